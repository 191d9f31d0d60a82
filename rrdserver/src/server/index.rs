//! The series index: every series by metric, every tag key and tag value,
//! and OpenTSDB-style UIDs (assigned in first-seen order; series found at
//! startup are taken in sorted order). Built from the store's directory at
//! startup, so it is never out of step with the files, and extended as puts
//! create series.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use rrdcore::{SeriesHandle, SeriesKey, Store};

/// One series: its key and its store handle.
#[derive(Debug)]
pub struct Series {
    /// The metric and tags.
    pub key: SeriesKey,
    /// The store handle (writes and fetches skip the store's own index).
    pub handle: SeriesHandle,
    /// The OpenTSDB-style series ID: uppercase hex of the metric UID then
    /// the tag key/value UID pairs in tag key UID order.
    pub tsuid: String,
    /// What the server remembers of the series' latest points. Held while
    /// the series' points are accepted and applied: it orders writes to
    /// the series (lock order: this, then the database's lock).
    memory: std::sync::Mutex<Memory>,
    /// The series' id in the journal's current segment.
    pub journal: std::sync::atomic::AtomicU64,
    /// A counter (a perfdata `c` value): its database is created with
    /// COUNTER data sources.
    pub counter: std::sync::atomic::AtomicBool,
    /// Where the series' next held point goes (the last held one's
    /// address), kept for prefetch hints; never dereferenced.
    pub(crate) held_tail: std::sync::atomic::AtomicUsize,
    /// What deciding its points needs is in its memory (`admit`).
    pub(crate) loaded: std::sync::atomic::AtomicBool,
    /// Its canonical text is longer than a journal record can hold: every
    /// point is refused (worked out once, not per batch).
    pub(crate) name_too_long: bool,
}

/// The latest points of a series, in memory.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// The last points stored, as (ms, value bits): a point resent by a
    /// collector is recognised as already stored.
    recent: Recent,
    /// The last point and the per-second rate between the last two (what
    /// Bosun keeps per series), when known since the start.
    last: Last,
    /// Accepted points not yet applied (the reorder window), by time.
    pub(crate) held: Vec<Held>,
    /// The earliest arrival among `held` (meaningless while it is empty):
    /// until it has waited the window, no held point is due.
    pub(crate) earliest: u64,
    /// The database's last update, once read.
    pub(crate) applied: Option<rrdcore::Timestamp>,
    /// Whether the series is on the list of series with held points.
    pub(crate) listed: bool,
    /// What admission needs of its database, once loaded.
    pub(crate) admit: Option<super::write::window::Admit>,
}

/// An accepted point waiting in the reorder window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Held {
    /// Its time, milliseconds.
    pub(crate) ms: u64,
    /// Its value.
    pub(crate) value: f64,
    /// When it arrived, milliseconds since the server started.
    pub(crate) arrived: u64,
}

impl Memory {
    /// The address of the last held point (the start of the buffer when
    /// none is held), for [`Series`]' `held_tail` hint.
    pub(crate) fn held_tail(&self) -> usize {
        let end = self.held.as_ptr_range().end.addr();
        if self.held.is_empty() { end } else { end - size_of::<Held>() }
    }

    /// Whether (ms, value) is one of the recently stored points.
    pub(crate) fn stored_recently(&self, ms: u64, value: f64) -> bool {
        self.recent.points.iter().take(self.recent.len).any(|(t, v)| *t == ms && *v == value.to_bits())
    }

    /// A point applied to the database.
    pub(crate) fn stored(&mut self, ms: u64, value: f64) {
        self.recent.push(ms, value);
        observe(&mut self.last, ms, value);
    }

    /// A point accepted (held or applied): taken into the last-value table.
    pub(crate) fn observe(&mut self, ms: u64, value: f64) {
        observe(&mut self.last, ms, value);
    }
}

/// A series' last point, as Bosun keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Last {
    /// The last value.
    pub value: f64,
    /// Its time, milliseconds.
    pub time_ms: u64,
    /// Per-second change from the point before (0 when there was none).
    pub rate: f64,
    /// Whether a point was seen.
    pub known: bool,
}

/// A small ring of (ms, value bits), kept inline (no separate allocation).
#[derive(Debug, Default)]
struct Recent {
    points: [(u64, u64); RECENT],
    /// Next slot to write.
    next: usize,
    /// Slots filled (up to [`RECENT`]).
    len: usize,
}

/// How many recent points each series remembers for recognising resends.
pub const RECENT: usize = 8;

impl Series {
    /// Locks what the server remembers of the series (see `memory`).
    pub(crate) fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a point into the last-value table: only a newer point counts;
    /// the rate is the change per second from the previous one.
    pub fn observe(&self, time_ms: u64, value: f64) {
        self.memory().observe(time_ms, value);
    }

    /// Bytes of the series' canonical text (`metric{k=v,...}`).
    pub fn text_len(&self) -> usize {
        self.key.metric().len() + 2 + self.key.tags().iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>().saturating_sub(1)
    }

    /// The last point, if one was seen since the start.
    pub fn last(&self) -> Option<Last> {
        self.memory.lock().ok().map(|m| m.last).filter(|l| l.known)
    }

}

fn observe(l: &mut Last, time_ms: u64, value: f64) {
    if !l.known || time_ms > l.time_ms {
        #[expect(clippy::cast_precision_loss, reason = "millisecond spans are far below 2^53")]
        let rate = if l.known { (value - l.value) / ((time_ms - l.time_ms) as f64 / 1000.0) } else { 0.0 };
        *l = Last { value, time_ms, rate, known: true };
    }
}

impl Recent {
    fn push(&mut self, t: u64, v: f64) {
        if let Some(slot) = self.points.get_mut(self.next) {
            *slot = (t, v.to_bits());
        }
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }
}

impl Series {
    /// The value of tag `k`, if the series has it.
    pub fn tag(&self, k: &str) -> Option<&str> {
        self.key.tag(k)
    }
}

/// Shards of the text-to-series map (looked up once per point: a single
/// lock word would bounce between the threads writing).
const SHARDS: usize = 16;

/// Canonical text (see [`canonical`]) to series.
type ByText = HashMap<Box<str>, Arc<Series>, BuildHasherDefault<Fx>>;

/// What names exist, and which series each metric has.
#[derive(Debug, Default)]
pub struct Index {
    inner: RwLock<Inner>,
    by_text: [RwLock<ByText>; SHARDS],
}

fn shard_of(text: &str) -> usize {
    let mut h = Fx::default();
    h.write(text.as_bytes());
    usize::try_from(h.finish() >> 60).unwrap_or(0)
}

#[derive(Debug, Default)]
struct Inner {
    /// Series per metric, in creation order.
    by_metric: BTreeMap<String, Vec<Arc<Series>>>,
    metric_uids: HashMap<String, u32>,
    tagk_uids: BTreeMap<String, u32>,
    tagv_uids: BTreeMap<String, u32>,
}

/// A fast hash for series texts (the index is looked up once per point;
/// SipHash's flooding resistance is not needed for names we validated).
/// The multiply-rotate scheme of rustc's FxHasher, over 8-byte words.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (which pick the bucket) poorly
        // mixed; a murmur3-style finish spreads every input bit over them.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

/// Which name space a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Metric names.
    Metric,
    /// Tag keys.
    TagK,
    /// Tag values.
    TagV,
}

impl Kind {
    /// OpenTSDB's name of the kind, as in `No such name for 'metrics'`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Metric => "metrics",
            Kind::TagK => "tagk",
            Kind::TagV => "tagv",
        }
    }
}

/// The key of a canonical text `metric{k=v,...}`.
pub fn parse_canonical(text: &str) -> Option<SeriesKey> {
    let (metric, rest) = text.split_once('{')?;
    let inner = rest.strip_suffix('}')?;
    let tags: Vec<(&str, &str)> = inner.split(',').filter(|p| !p.is_empty()).map(|p| p.split_once('=')).collect::<Option<_>>()?;
    SeriesKey::new(metric, tags).ok()
}

/// The text a series is looked up by: `metric{k=v,k2=v2}` with sorted keys.
/// OpenTSDB names cannot hold `{`, `=` or `,`, so the text is unambiguous.
pub fn canonical<'a>(out: &mut String, metric: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.clear();
    out.push_str(metric);
    out.push('{');
    for (i, (k, v)) in tags.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out.push('}');
}

fn uid(map_len: usize) -> u32 {
    u32::try_from(map_len + 1).unwrap_or(u32::MAX)
}

impl Index {
    /// The index of every series in `store`.
    pub fn build(store: &Store) -> Result<Index, rrdcore::Error> {
        let index = Index::default();
        let mut text = String::new();
        for key in store.series() {
            let handle = store.handle(&key)?;
            canonical(&mut text, key.metric(), key.tags().iter().map(|(k, v)| (k.as_str(), v.as_str())));
            index.insert(key, handle, &text);
        }
        Ok(index)
    }

    /// The series with this canonical text, if known.
    pub fn get(&self, text: &str) -> Option<Arc<Series>> {
        let shard = self.by_text.get(shard_of(text))?;
        shard.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(text).cloned()
    }

    /// The series of `key`, added (with a handle from `store`) when new.
    pub fn get_or_insert(&self, store: &Store, text: &str, key: impl FnOnce() -> Result<SeriesKey, String>) -> Result<Arc<Series>, String> {
        if let Some(s) = self.get(text) {
            return Ok(s);
        }
        let key = key()?;
        let handle = store.handle(&key).map_err(|e| e.to_string())?;
        Ok(self.insert(key, handle, text))
    }

    /// Adds a series under its canonical `text`.
    fn insert(&self, key: SeriesKey, handle: SeriesHandle, text: &str) -> Arc<Series> {
        let mut inner = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Inserts are serialised by `inner`'s lock: check again under it.
        if let Some(s) = self.get(text) {
            return s;
        }
        let n = inner.metric_uids.len();
        let m_uid = *inner.metric_uids.entry(key.metric().to_owned()).or_insert_with(|| uid(n));
        let mut pairs = Vec::with_capacity(key.tags().len());
        for (k, v) in key.tags() {
            let n = inner.tagk_uids.len();
            let ku = *inner.tagk_uids.entry(k.clone()).or_insert_with(|| uid(n));
            let n = inner.tagv_uids.len();
            let vu = *inner.tagv_uids.entry(v.clone()).or_insert_with(|| uid(n));
            pairs.push((ku, vu));
        }
        pairs.sort_unstable();
        let mut tsuid = format!("{m_uid:06X}");
        for (k, v) in pairs {
            let _ = write!(tsuid, "{k:06X}{v:06X}");
        }
        let series = Arc::new(Series { key, handle, tsuid, memory: std::sync::Mutex::default(), journal: std::sync::atomic::AtomicU64::new(0), counter: std::sync::atomic::AtomicBool::new(false), held_tail: std::sync::atomic::AtomicUsize::new(0), loaded: std::sync::atomic::AtomicBool::new(false), name_too_long: text.len() > crate::server::write::journal::format::MAX_SERIES_TEXT });
        inner.by_metric.entry(series.key.metric().to_owned()).or_default().push(Arc::clone(&series));
        if let Some(shard) = self.by_text.get(shard_of(text)) {
            shard.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(text.into(), Arc::clone(&series));
        }
        series
    }

    /// Every series of `metric` (empty when the metric is unknown).
    pub fn series_of(&self, metric: &str) -> Vec<Arc<Series>> {
        self.read().by_metric.get(metric).cloned().unwrap_or_default()
    }

    /// Every series.
    pub fn all_series(&self) -> Vec<Arc<Series>> {
        self.read().by_metric.values().flatten().cloned().collect()
    }

    /// The series with this TSUID.
    pub fn by_tsuid(&self, tsuid: &str) -> Option<Arc<Series>> {
        self.read().by_metric.values().flatten().find(|s| s.tsuid.eq_ignore_ascii_case(tsuid)).cloned()
    }

    /// Whether `name` is known as a `kind`.
    pub fn has(&self, kind: Kind, name: &str) -> bool {
        let inner = self.read();
        match kind {
            Kind::Metric => inner.by_metric.contains_key(name),
            Kind::TagK => inner.tagk_uids.contains_key(name),
            Kind::TagV => inner.tagv_uids.contains_key(name),
        }
    }

    /// The UID of a name, as 6 uppercase hex digits.
    pub fn uid(&self, kind: Kind, name: &str) -> Option<String> {
        let inner = self.read();
        let id = match kind {
            Kind::Metric => inner.metric_uids.get(name),
            Kind::TagK => inner.tagk_uids.get(name),
            Kind::TagV => inner.tagv_uids.get(name),
        };
        id.map(|i| format!("{i:06X}"))
    }

    /// Names of `kind` starting with `prefix`, in byte order, at most `max`.
    pub fn suggest(&self, kind: Kind, prefix: &str, max: usize) -> Vec<String> {
        let inner = self.read();
        let names: Box<dyn Iterator<Item = &String>> = match kind {
            Kind::Metric => Box::new(inner.by_metric.range(prefix.to_owned()..).map(|(k, _)| k)),
            Kind::TagK => Box::new(inner.tagk_uids.range(prefix.to_owned()..).map(|(k, _)| k)),
            Kind::TagV => Box::new(inner.tagv_uids.range(prefix.to_owned()..).map(|(k, _)| k)),
        };
        names.take_while(|n| n.starts_with(prefix)).take(max).cloned().collect()
    }

    /// Counts of metrics, tag keys, tag values and series.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let inner = self.read();
        let series = self.by_text.iter().map(|s| s.read().map_or(0, |m| m.len())).sum();
        (inner.by_metric.len(), inner.tagk_uids.len(), inner.tagv_uids.len(), series)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
