//! tsdbrelay's `-denormalize` rules (`bosun-api.md` §4.3), built in: a
//! rule `metric__tagk[__tagk2...]` names each series of `metric` also as
//! `__<v1>[.<v2>...].<metric>` (the values of the rule's tag keys). Nothing
//! is stored twice: the names are resolved to the underlying series when
//! queried, listed wherever Bosun lists metrics, and points a tsdbrelay in
//! front sends under them are recognised and not stored again.

use crate::server::index::Series;

/// Opserver's rule set (Stack Overflow's tsdbrelay flag), the default.
pub const OPSERVER_RULES: &str =
    "os.cpu__host,os.mem.used__host,os.net.bytes__host,os.net.bond.bytes__host,os.net.other.bytes__host,os.net.tunnel.bytes__host,os.net.virtual.bytes__host";

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The metric it applies to.
    pub metric: String,
    /// The tag keys whose values make the name, in order.
    pub tagks: Vec<String>,
}

/// The rules, one per metric (a later rule for a metric replaces an earlier one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Parses the flag syntax: `metric__tagk[__tagk2...]`, comma-separated.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let mut rules: Vec<Rule> = Vec::new();
        for rule in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let mut parts = rule.split("__");
            let metric = parts.next().unwrap_or_default().to_owned();
            let tagks: Vec<String> = parts.map(str::to_owned).collect();
            if metric.is_empty() || tagks.is_empty() || tagks.iter().any(String::is_empty) {
                return Err(format!("bad denormalization rule '{rule}': expected metric__tagk[__tagk2...]"));
            }
            rules.retain(|r| r.metric != metric);
            rules.push(Rule { metric, tagks });
        }
        Ok(Rules(rules))
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.0
    }

    fn rule_for(&self, metric: &str) -> Option<&Rule> {
        self.0.iter().find(|r| r.metric == metric)
    }

    /// The denormalized name of a series of `metric` with these tags, if a rule applies.
    pub fn alias<'a>(&self, metric: &str, tag: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let rule = self.rule_for(metric)?;
        let mut name = String::from("__");
        for (i, k) in rule.tagks.iter().enumerate() {
            if i > 0 {
                name.push('.');
            }
            name.push_str(tag(k)?);
        }
        name.push('.');
        name.push_str(metric);
        Some(name)
    }

    /// The alias of a series, if a rule applies.
    pub fn alias_of(&self, s: &Series) -> Option<String> {
        self.alias(s.key.metric(), |k| s.tag(k))
    }

    /// The metrics `name` may be an alias of (`__...<metric>` for a rule's metric).
    pub fn candidates<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let inner = name.strip_prefix("__");
        self.0.iter().filter_map(move |r| {
            let rest = inner?.strip_suffix(r.metric.as_str())?.strip_suffix('.')?;
            (!rest.is_empty()).then_some(r.metric.as_str())
        })
    }

    /// Whether a point named `metric` with these tags is a denormalized copy
    /// (its name is exactly the alias of its own tags under some rule).
    pub fn is_copy<'a>(&self, metric: &str, tag: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.candidates(metric).any(|m| self.alias(m, tag).is_some_and(|a| a == metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_names() {
        let r = Rules::parse(OPSERVER_RULES).unwrap();
        assert_eq!(r.rules().len(), 7);
        let tags = |k: &str| match k {
            "host" => Some("ny-web01"),
            "iface" => Some("eth0"),
            _ => None,
        };
        assert_eq!(r.alias("os.cpu", tags).as_deref(), Some("__ny-web01.os.cpu"));
        assert_eq!(r.alias("os.disk.fs.space_used", tags), None);
        assert_eq!(r.candidates("__ny-web01.os.net.bytes").collect::<Vec<_>>(), ["os.net.bytes"]);
        assert!(r.is_copy("__ny-web01.os.cpu", tags));
        assert!(!r.is_copy("__other.os.cpu", tags));
        assert!(!r.is_copy("os.cpu", tags));
        // Dotted host names work because names are compared whole.
        let dotted = |k: &str| (k == "host").then_some("10.0.0.5");
        assert!(r.is_copy("__10.0.0.5.os.cpu", dotted));
        let two = Rules::parse("m__host__iface,m__host").unwrap();
        assert_eq!(two.rules().len(), 1, "a later rule for a metric replaces the earlier");
        let two = Rules::parse("m__host__iface").unwrap();
        assert_eq!(two.alias("m", tags).as_deref(), Some("__ny-web01.eth0.m"));
        assert!(Rules::parse("m").is_err() && Rules::parse("m__").is_err() && Rules::parse("__host").is_err());
    }
}
