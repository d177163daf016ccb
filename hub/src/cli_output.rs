//! Tables and summaries for people, shared by several commands.

use crate::store::ledger::SkuStock;
use std::fmt;

/// Stock balances per SKU with their batches.
pub struct StockTable<'a>(pub &'a [SkuStock]);

impl fmt::Display for StockTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:<32} {:>10} {:<5}",
            "SKU", "NAME", "ON HAND", "UNIT"
        )?;
        for s in self.0 {
            writeln!(
                f,
                "{:<16} {:<32} {:>10} {:<5}",
                s.sku,
                truncate(&s.name, 32),
                s.on_hand,
                s.unit
            )?;
            for b in &s.batches {
                let expiry = b.expiry.as_deref().unwrap_or("-");
                writeln!(
                    f,
                    "  lot {:<12} expires {:<18} {:>10}",
                    b.lot, expiry, b.on_hand
                )?;
            }
        }
        if self.0.is_empty() {
            writeln!(
                f,
                "(no SKUs yet: master data arrives from the central system)"
            )?;
        }
        Ok(())
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    }
}
