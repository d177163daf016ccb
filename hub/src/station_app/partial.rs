//! Partial handover at the pickup counter: the items ticked on the screen leave, the rest of
//! the order stays open (`partially_collected`) for a later code check and handover. The
//! handover itself is the same station command as a whole one (`workflows::station`) with its
//! `partial` quantities; this module only turns what is ticked into those quantities and
//! words what stays open.

use crate::catalogue::{self, Lang};
use crate::store::pickup_orders::Part;

/// What leaves now of each line: the number of items ticked on it (lines from 1; lines with
/// nothing ticked are not named, so they stay open).
pub(super) fn ticked_parts(ticked: &[(usize, String)]) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    for (line, _) in ticked {
        match parts.iter_mut().find(|p| p.line_no == line + 1) {
            Some(p) => p.quantity += 1,
            None => parts.push(Part {
                line_no: line + 1,
                quantity: 1,
            }),
        }
    }
    parts.sort_by_key(|p| p.line_no);
    parts
}

/// What stays open after a partial handover, in words: "still to collect: line 1 ×1 · …".
pub(super) fn still_open(open: &[i64], lang: Lang) -> String {
    let lines: Vec<String> = open
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            format!(
                "{} ×{n}",
                catalogue::text("pickup.line", lang).replace("{}", &(i + 1).to_string())
            )
        })
        .collect();
    format!(
        "{}: {}",
        catalogue::text("pickup.still_open", lang),
        lines.join(" · ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_items_count_per_line_from_one() {
        let ticked = [
            (1, "TC-3".to_owned()),
            (0, "TC-1".to_owned()),
            (1, "TC-4".to_owned()),
        ];
        assert_eq!(
            ticked_parts(&ticked),
            vec![
                Part {
                    line_no: 1,
                    quantity: 1
                },
                Part {
                    line_no: 2,
                    quantity: 2
                }
            ]
        );
        assert!(ticked_parts(&[]).is_empty());
        assert_eq!(
            still_open(&[1, 0, 250], Lang::En),
            "Still to collect (check the code again to hand over): line 1 ×1 · line 3 ×250"
        );
    }
}
