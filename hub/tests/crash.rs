//! Crash test: a child process applies movements from several threads and is killed with
//! SIGKILL at random moments. After every restart the ledger verifies, every acknowledged
//! movement is present with the sequence number it was acknowledged with, and the outbox
//! sequence has no gaps and no duplicates.

use hub::store::{Store, StoreOptions, ledger, outbox};
use hub_core::MovementId;
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const KILLS: usize = 24;

#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_movement() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let mut rng = rand::rng();
    let mut acked: Vec<(String, i64)> = Vec::new();

    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args([
                "dev",
                "apply-loop",
                "--threads",
                "4",
                "--prefix",
                &format!("round{round}"),
            ])
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the hub child");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    let mut parts = line.split_whitespace();
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some("ACK"), Some(id), Some(seq)) => {
                            Some((id.to_owned(), seq.parse::<i64>().ok()?))
                        }
                        _ => None,
                    }
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(60..400)));
        // SIGKILL: no destructor, no flush, no checkpoint runs in the child.
        child.kill().unwrap();
        child.wait().unwrap();
        let round_acks = reader.join().unwrap();
        acked.extend(round_acks);

        let store =
            Store::open(&db, "crash-site", &StoreOptions::default()).expect("reopen after SIGKILL");
        let report = store.read_blocking(ledger::verify).unwrap();
        assert!(
            report.ok(),
            "round {round}: ledger does not verify: {:?}",
            report.problems
        );
        let problems = store.read_blocking(outbox::check_sequence).unwrap();
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        store.close();
    }

    assert!(
        acked.len() > 100,
        "the child should have acknowledged work before being killed ({})",
        acked.len()
    );
    let store = Store::open(&db, "crash-site", &StoreOptions::default()).unwrap();
    let ids = acked.clone();
    let missing: Vec<String> = store
        .read_blocking(move |c| {
            let mut missing = Vec::new();
            for (id, seq) in &ids {
                let found = ledger::movement_by_id(c, &MovementId::new(id.clone()).unwrap())?;
                let seq_row: Option<String> = c
                    .query_row("SELECT payload FROM outbox WHERE seq = ?1", [seq], |r| {
                        r.get(0)
                    })
                    .ok();
                let event_matches = seq_row.is_some_and(|p| p.contains(&format!("\"{id}\"")));
                if found.is_none() || !event_matches {
                    missing.push(id.clone());
                }
            }
            Ok::<_, hub::store::StoreError>(missing)
        })
        .unwrap();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let mut seqs: Vec<i64> = acked.iter().map(|(_, s)| *s).collect();
    seqs.sort();
    let before = seqs.len();
    seqs.dedup();
    assert_eq!(
        before,
        seqs.len(),
        "two acknowledgements shared one sequence number"
    );
}
