//! Plain-text tables: left-aligned columns two spaces apart, no trailing blanks.

/// A table with a header row; cells are rendered as given.
#[derive(Debug, Clone)]
pub struct Table {
    indent: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles, each line starting with `indent`.
    pub fn new(indent: &'static str, header: &[&'static str]) -> Table {
        Table {
            indent,
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "{cells:?}");
        self.rows.push(cells);
    }

    /// The header and the rows, one line each.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([self.header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let padded: Vec<String> = cells
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(self.indent);
            out.push_str(padded.join("  ").trim_end());
            out.push('\n');
        };
        line(&mut self.header.iter().copied());
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }
}

/// Broker ids as `1,2,3`; `-` for none.
pub fn ids(list: &[i32]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_blanks() {
        let mut table = Table::new("  ", &["ID", "ADDRESS", "RACK"]);
        table.row(vec!["1".into(), "127.0.0.1:9092".into(), "-".into()]);
        table.row(vec!["10".into(), "h:1".into(), String::new()]);
        assert_eq!(
            table.render(),
            "  ID  ADDRESS         RACK\n  1   127.0.0.1:9092  -\n  10  h:1\n"
        );
        assert_eq!(Table::new("", &["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn id_lists() {
        assert_eq!(ids(&[3, 1, 2]), "3,1,2");
        assert_eq!(ids(&[]), "-");
    }
}
