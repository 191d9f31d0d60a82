//! Which schema a new series gets: metric-name patterns, first match wins,
//! the monitoring default otherwise (the idea of Graphite's storage-schemas).

use crate::error::{Error, Result};
use crate::schema::Schema;

/// A pattern over metric names: `*` matches any run of characters (dots
/// included), `?` any one character, everything else itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern from its text, e.g. `os.net.*.bytes` or `*`.
    pub fn new(text: &str) -> Result<Pattern> {
        if text.is_empty() {
            return Err(Error::Schema {
                field: "rule pattern",
                value: String::new(),
                reason: "a pattern must not be empty (use * to match everything)",
            });
        }
        Ok(Pattern(text.to_owned()))
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let s: Vec<char> = name.chars().collect();
        // Iterative glob with one backtrack point for the last `*`.
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some('?') => {
                    pi += 1;
                    si += 1;
                }
                Some(c) if Some(c) == s.get(si) => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..).is_some_and(|rest| rest.iter().all(|c| *c == '*'))
    }
}

/// Ordered rules mapping metric-name patterns to schemas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaRules {
    rules: Vec<(Pattern, Schema)>,
}

impl SchemaRules {
    /// No rules: every series gets the monitoring default.
    pub fn new() -> Self {
        SchemaRules::default()
    }

    /// Adds a rule after the existing ones. The schema must be valid and have
    /// exactly one data source (a store series holds one value per time).
    pub fn push(&mut self, pattern: Pattern, schema: Schema) -> Result<()> {
        schema.validate()?;
        if schema.data_sources.len() != 1 {
            return Err(Error::Schema {
                field: "rule schema",
                value: pattern.as_str().to_owned(),
                reason: "a store schema needs exactly one data source",
            });
        }
        self.rules.push((pattern, schema));
        Ok(())
    }

    /// The schema for a new series of `metric`.
    pub fn schema_for(&self, metric: &str) -> Schema {
        self.rules
            .iter()
            .find(|(p, _)| p.matches(metric))
            .map_or_else(Schema::monitoring_default, |(_, s)| s.clone())
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[(Pattern, Schema)] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{DataSource, DsType};

    #[test]
    fn globs() {
        let m = |p: &str, s: &str| Pattern::new(p).unwrap().matches(s);
        assert!(m("*", "anything.at.all"));
        assert!(m("os.net.*.bytes", "os.net.bond.bytes"));
        assert!(m("os.net.*.bytes", "os.net.a.b.bytes"));
        assert!(!m("os.net.*.bytes", "os.net.bytes"));
        assert!(m("os.cpu?", "os.cpu1"));
        assert!(!m("os.cpu?", "os.cpu"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("**", ""));
    }

    #[test]
    fn first_match_wins() {
        let mut rules = SchemaRules::new();
        let mut counter = Schema::monitoring_default();
        counter.data_sources = vec![DataSource::new("value", DsType::Counter, 600)];
        rules.push(Pattern::new("*.packets").unwrap(), counter.clone()).unwrap();
        let mut fine = Schema::monitoring_default();
        fine.step = 60;
        rules.push(Pattern::new("*").unwrap(), fine.clone()).unwrap();
        assert_eq!(rules.schema_for("if.packets"), counter);
        assert_eq!(rules.schema_for("os.cpu"), fine);
        assert_eq!(SchemaRules::new().schema_for("x"), Schema::monitoring_default());
        let mut two = Schema::monitoring_default();
        two.data_sources.push(DataSource::new("b", DsType::Gauge, 600));
        assert!(SchemaRules::new().push(Pattern::new("*").unwrap(), two).is_err());
    }
}
