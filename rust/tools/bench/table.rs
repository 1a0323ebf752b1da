//! The results table: rows of named figures, each figure the median of several runs shown
//! with its min and max. Kept generic (a list of columns, rows of cells) so that other
//! benchmarks (DTLS) can add their own rows or tables without touching the printing.

use std::fmt::Write as _;

/// Repeated measurements of one figure; printed as `median (min–max)`.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    values: Vec<f64>,
}

impl Samples {
    /// Records one run's value.
    pub fn push(&mut self, value: f64) {
        if value.is_finite() {
            self.values.push(value);
        }
    }

    /// The median (the middle run, or the mean of the two middle runs); `None` before any
    /// run, so a missing figure prints as a dash instead of a fake zero.
    pub fn median(&self) -> Option<f64> {
        let mut v = self.values.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }

    /// The smallest and largest run, showing how noisy the figure is.
    pub fn range(&self) -> Option<(f64, f64)> {
        let min = self.values.iter().copied().reduce(f64::min)?;
        let max = self.values.iter().copied().reduce(f64::max)?;
        Some((min, max))
    }
}

/// One cell of a row.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A measured figure printed with this many decimals.
    Stat(Samples, usize),
    /// A derived or descriptive value, printed as is.
    Text(String),
    /// Not applicable to this row (e.g. frame time of a client without frames).
    Empty,
}

impl Cell {
    fn render(&self) -> String {
        match self {
            Cell::Stat(s, decimals) => match (s.median(), s.range()) {
                (Some(m), Some((lo, hi))) => {
                    let d = *decimals;
                    format!("{m:.d$} ({lo:.d$}–{hi:.d$})")
                }
                _ => "—".to_string(),
            },
            Cell::Text(t) => t.clone(),
            Cell::Empty => "—".to_string(),
        }
    }
}

/// A named row of cells, one per column of its table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured, e.g. "HTTPPool, concurrency 8".
    pub name: String,
    /// The figures, in the table's column order.
    pub cells: Vec<Cell>,
}

/// A titled table; rows are added as runs finish.
#[derive(Clone, Debug)]
pub struct Table {
    /// Printed as a heading above the table.
    pub title: String,
    /// Column headings after the row-name column.
    pub columns: Vec<String>,
    /// The rows, in the order added.
    pub rows: Vec<Row>,
}

impl Table {
    /// An empty table with these column headings.
    pub fn new(title: &str, columns: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// The table as GitHub-flavoured Markdown (readable as plain text in a terminal too).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(out, "| client | {} |", self.columns.join(" | "));
        let _ = writeln!(
            out,
            "|---|{}",
            self.columns.iter().map(|_| "--:|").collect::<String>()
        );
        for row in &self.rows {
            let mut cells: Vec<String> = row.cells.iter().map(Cell::render).collect();
            cells.resize(self.columns.len(), "—".to_string());
            let _ = writeln!(out, "| {} | {} |", row.name, cells.join(" | "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let mut s = Samples::default();
        assert_eq!(s.median(), None);
        for v in [3.0, 1.0, 2.0] {
            s.push(v);
        }
        assert_eq!(s.median(), Some(2.0));
        assert_eq!(s.range(), Some((1.0, 3.0)));
        s.push(10.0);
        assert_eq!(s.median(), Some(2.5));
    }

    #[test]
    fn markdown_pads_missing_cells() {
        let mut t = Table::new("t", &["a", "b"]);
        t.rows.push(Row {
            name: "x".into(),
            cells: vec![Cell::Text("1".into())],
        });
        assert!(t.to_markdown().contains("| x | 1 | — |"));
    }
}
