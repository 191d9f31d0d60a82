//! A connection's memory of the series it sends, in the order it sends them.
//!
//! Collectors (tcollector, scollector, Nagios relays) send the same series
//! in the same order every interval. [`Recall`] keeps each series' text in
//! that order, back to back, and expects the next line to name the series
//! after the last one: a compare against memory the CPU reads ahead, instead
//! of a probe of the shared index with a cold key compare per point. A line
//! out of order finds its place through a small map of the connection's own
//! series; a new series goes to the shared index as before. Index entries
//! are never removed, so a remembered series stays valid.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Arc;

use super::app::{App, AsPoint};
use super::index::{Fx, Series, canonical};

/// Most series one connection remembers; past it, the rest are looked up
/// in the shared index each time (bounds memory per connection, about 100
/// bytes per series).
pub const MAX_REMEMBERED: usize = 200_000;

/// How many series ahead the record of the expected series is hinted.
const AHEAD: usize = 4;

#[derive(Debug)]
struct Entry {
    start: usize,
    end: usize,
    series: Arc<Series>,
}

/// The series one connection has sent; see the module docs.
#[derive(Debug, Default)]
pub struct Recall {
    /// Canonical texts, back to back, in the order first sent.
    texts: String,
    entries: Vec<Entry>,
    /// Position of each text (by hash; the text is compared to confirm).
    /// The map itself uses the standard keyed hasher: the texts come from
    /// the network, and it is consulted only when a line is out of order.
    places: HashMap<u64, usize>,
    /// The entry the next line is expected to name.
    next: usize,
}

impl Recall {
    /// The series of a point, as [`App::resolve`] gives it. `buf` is
    /// scratch space, reused across calls.
    pub fn resolve(&mut self, app: &App, p: &impl AsPoint, buf: &mut String) -> Result<Arc<Series>, String> {
        canonical(buf, p.metric(), p.tag_pairs());
        if let Some(found) = self.at(self.next, buf) {
            return Ok(found);
        }
        // Out of the expected order: found by its hash, or new.
        let h = hash(buf);
        if let Some(found) = self.places.get(&h).copied().and_then(|i| self.at(i, buf)) {
            return Ok(found);
        }
        let series = app.resolve_text(p, buf)?;
        self.remember(h, buf, &series);
        Ok(series)
    }

    /// The series at `i` when its text is `text`; the expectation moves past it.
    fn at(&mut self, i: usize, text: &str) -> Option<Arc<Series>> {
        let e = self.entries.get(i)?;
        if self.texts.get(e.start..e.end) != Some(text) {
            return None;
        }
        if let Some(ahead) = self.entries.get(i + AHEAD) {
            rrdcore::prefetch::value(&*ahead.series);
        }
        self.next = if i + 1 == self.entries.len() { 0 } else { i + 1 };
        Some(Arc::clone(&e.series))
    }

    /// Keeps a new series, whose text hashes to `h`.
    fn remember(&mut self, h: u64, text: &str, series: &Arc<Series>) {
        if self.entries.len() >= MAX_REMEMBERED {
            return;
        }
        // Another text with the same hash: the first keeps the place.
        let std::collections::hash_map::Entry::Vacant(place) = self.places.entry(h) else { return };
        let start = self.texts.len();
        self.texts.push_str(text);
        place.insert(self.entries.len());
        // The expectation stays: a series new in the middle of a round
        // leaves the rest of the round in its order.
        self.entries.push(Entry { start, end: self.texts.len(), series: Arc::clone(series) });
    }
}

fn hash(text: &str) -> u64 {
    let mut h = Fx::default();
    h.write(text.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Config;

    struct P(&'static str, &'static str);

    impl AsPoint for P {
        fn metric(&self) -> &str {
            self.0
        }
        fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
            std::iter::once(("host", self.1))
        }
        fn timestamp_ms(&self) -> u64 {
            0
        }
        fn value(&self) -> crate::opentsdb::point::Value {
            crate::opentsdb::point::Value::Int(0)
        }
    }

    /// In order, out of order, skipped, new and unknown series all resolve
    /// to the shared index's series, and the expected place follows the
    /// connection's order.
    #[test]
    fn resolves_as_the_index_does_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::open(Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).unwrap();
        let mut recall = Recall::default();
        let mut buf = String::new();
        let hosts = ["a", "b", "c", "d", "e", "f"];
        let expect = |recall: &mut Recall, buf: &mut String, h: &'static str| {
            let got = recall.resolve(&app, &P("m", h), buf).unwrap();
            let want = app.resolve(&P("m", h), &mut String::new()).unwrap();
            assert!(Arc::ptr_eq(&got, &want), "host {h}");
        };
        for h in hosts {
            expect(&mut recall, &mut buf, h);
        }
        assert_eq!(recall.entries.len(), 6);
        for h in hosts {
            expect(&mut recall, &mut buf, h);
        }
        assert_eq!(recall.next, 0, "a whole round in order wraps the expectation");
        for h in ["a", "d", "e", "b", "x", "f", "a", "a", "y"] {
            expect(&mut recall, &mut buf, h);
        }
        assert_eq!(recall.entries.len(), 8, "only the new series x and y were added");
        expect(&mut recall, &mut buf, "c");
        assert_eq!(recall.next, 3, "after c comes d");
        app.close().unwrap();
    }
}
