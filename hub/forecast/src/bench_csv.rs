//! The text bridge to the Python ETS baseline (`bench/ets_baseline.py`): writes the histories it
//! fits as CSV and parses the forecasts it prints. Strings in, strings out — the caller (the
//! hub's bench command) owns files, processes and the virtual environment.
//!
//! History CSV: `unique_id,ds,y,stocked_out` — one series per SKU and origin
//! (`<sku>@<origin date>`), the listed days before the origin, sales as recorded (the baseline
//! sees stock-out days as ordinary sales and no demand signals: what a user fitting ETS on sales
//! would do). Forecast CSV: `unique_id,ds,yhat`, extra columns ignored.

use crate::eval::{EvalOptions, ExternalForecast, evaluation_cuts};
use crate::generator::SiteHistory;
use chrono::NaiveDate;
use std::fmt::Write;

/// The history CSV for the cuts of a rolling-origin evaluation.
pub fn history_csv(site: &SiteHistory, options: &EvalOptions) -> String {
    let mut out = String::from("unique_id,ds,y,stocked_out\n");
    for cut in evaluation_cuts(site, options) {
        let id = cut.id(site);
        for o in site.skus[cut.sku].observations[..cut.origin]
            .iter()
            .filter(|o| o.existed)
        {
            let _ = writeln!(
                out,
                "{id},{},{},{}",
                o.date,
                o.sold,
                u8::from(o.stocked_out)
            );
        }
    }
    out
}

/// Why a forecast CSV was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("forecast CSV is empty")]
    Empty,
    #[error("forecast CSV header lacks column {0} (have: {1})")]
    MissingColumn(&'static str, String),
    #[error("forecast CSV line {line}: {problem}")]
    Line { line: usize, problem: String },
}

/// Parses `unique_id,ds,yhat` (any column order, extra columns ignored, blank lines skipped).
pub fn parse_forecast_csv(text: &str) -> Result<Vec<ExternalForecast>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(CsvError::Empty)?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |name: &'static str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| CsvError::MissingColumn(name, header.to_string()))
    };
    let (id_col, ds_col, y_col) = (find("unique_id")?, find("ds")?, find("yhat")?);
    let mut out = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let line_no = n + 1;
        let field = |i: usize| {
            fields.get(i).copied().ok_or_else(|| CsvError::Line {
                line: line_no,
                problem: format!("{} fields, expected at least {}", fields.len(), cols.len()),
            })
        };
        let ds = field(ds_col)?;
        // Accept `2026-03-02` and `2026-03-02 00:00:00`.
        let date =
            NaiveDate::parse_from_str(ds.get(..10).unwrap_or(ds), "%Y-%m-%d").map_err(|e| {
                CsvError::Line {
                    line: line_no,
                    problem: format!("date '{ds}': {e}"),
                }
            })?;
        let raw = field(y_col)?;
        let value = raw.parse::<f64>().map_err(|e| CsvError::Line {
            line: line_no,
            problem: format!("value '{raw}': {e}"),
        })?;
        out.push(ExternalForecast {
            unique_id: field(id_col)?.to_string(),
            date,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{GeneratorConfig, generate};

    #[test]
    fn history_csv_has_one_series_per_cut() {
        let site = generate(&GeneratorConfig {
            skus: 6,
            days: 60,
            ..GeneratorConfig::default()
        });
        let options = EvalOptions {
            origins: 2,
            ..EvalOptions::default()
        };
        let csv = history_csv(&site, &options);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("unique_id,ds,y,stocked_out"));
        let ids: std::collections::BTreeSet<&str> =
            lines.map(|l| l.split(',').next().unwrap_or("")).collect();
        assert_eq!(ids.len(), evaluation_cuts(&site, &options).len());
        assert!(ids.iter().all(|id| id.contains('@')));
    }

    #[test]
    fn forecast_csv_round_trip_and_errors() {
        let text = "ds,unique_id,yhat,extra\n2026-03-02 00:00:00,A@2026-03-02,1.5,x\n\n2026-03-03,A@2026-03-02,-0.25,y\n";
        let parsed = parse_forecast_csv(text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].unique_id, "A@2026-03-02");
        assert_eq!(parsed[1].value, -0.25);
        assert_eq!(parse_forecast_csv(""), Err(CsvError::Empty));
        assert!(matches!(
            parse_forecast_csv("unique_id,ds\n"),
            Err(CsvError::MissingColumn("yhat", _))
        ));
        assert!(matches!(
            parse_forecast_csv("unique_id,ds,yhat\nA,2026-13-01,1\n"),
            Err(CsvError::Line { line: 2, .. })
        ));
        assert!(matches!(
            parse_forecast_csv("unique_id,ds,yhat\nA,2026-01-01,abc\n"),
            Err(CsvError::Line { line: 2, .. })
        ));
    }
}
