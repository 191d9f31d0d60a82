//! [`Rrd`]: one database file, memory-mapped, with create, open, update,
//! fetch and info.

use crate::state::DNAN;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fetch::{self, FetchRequest, Fetched, RowSource};
use crate::format::{Layout, header, live};
use crate::mmap::MappedFile;
use crate::number;
use crate::schema::{DsType, MIN_START, Schema};
use crate::state::{State, Timestamp};
use crate::update::{self, RowSink, Scratch};

/// How [`Rrd::create`] makes a new database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateOptions {
    /// The database's start time (its virtual first update); default: now - 10 s.
    pub start: Option<i64>,
    /// Each archive's starting row. RRDtool picks these at random, which is the
    /// default; restoring a dump or replaying golden vectors sets them.
    pub cur_rows: Option<Vec<u64>>,
    /// Replace an existing file (default: refuse with [`Error::Exists`]).
    pub overwrite: bool,
    /// fsync the new file before returning.
    pub sync: bool,
}

/// Options for the text form of update ([`Rrd::update_args`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    /// `--template`: the data sources the values are for, in order; the others get `U`.
    pub template: Option<Vec<String>>,
    /// `--skip-past-updates`: silently skip updates not after the last one.
    pub skip_past: bool,
    /// What `N` and negative times are relative to; default: the system clock.
    pub now: Option<Timestamp>,
}

/// Everything `rrdtool info` shows about a database.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The file.
    pub path: PathBuf,
    /// The on-disk format version.
    pub format_version: u32,
    /// Bytes before the first row.
    pub header_size: u64,
    /// Total file size.
    pub file_size: u64,
    /// Step, data sources and archives.
    pub schema: Schema,
    /// Last update and every consolidation state.
    pub state: State,
}

/// One database file, mapped into memory.
///
/// ```
/// use rrdcore::{Cf, CreateOptions, FetchRequest, Rrd, Schema, Timestamp};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("load.rrd");
/// let opts = CreateOptions { start: Some(1_000_000_000), ..Default::default() };
/// let mut db = Rrd::create(&path, &Schema::monitoring_default(), &opts).unwrap();
/// for i in 1..=12 {
///     db.update(Timestamp::from_secs(1_000_000_000 + i * 300), &[i as f64]).unwrap();
/// }
/// let rows = db.fetch(&FetchRequest::new(Cf::Average, 1_000_000_000, 1_000_003_600)).unwrap();
/// assert_eq!(rows.step, 300);
/// ```
pub struct Rrd {
    path: PathBuf,
    map: MappedFile,
    shape: Arc<Shape>,
    state: State,
    active_slot: usize,
    seq: u64,
    /// Opened by a [`crate::Store`]: the live state reaches its slot only at
    /// [`Rrd::checkpoint`], after the rows are synced (see there).
    deferred: bool,
    /// The in-memory state is newer than the current slot (deferred only).
    dirty: bool,
    /// A database opened on its own inside a store's data directory holds
    /// that store's lock shared, so no store opens the directory meanwhile.
    _store_lock: Option<File>,
}

/// The live state of a store's database closed with changes no slot holds
/// yet ([`Rrd::park`]); [`Rrd::adopt`] takes it back when it is reopened.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) path: PathBuf,
    pub(crate) state: State,
}

impl std::fmt::Debug for Rrd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrd")
            .field("path", &self.path)
            .field("map", &self.map)
            .field("last_update", &self.state.last_update)
            .field("sequence", &self.seq)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

// Per-thread work buffers: shared by every database a thread updates, so they
// stay in cache when updates rotate over many databases.
thread_local! {
    static BUFS: std::cell::RefCell<Bufs> = std::cell::RefCell::new(Bufs::default());
}

/// The work buffers of one update: value texts and the algorithm's scratch.
#[derive(Debug, Default)]
struct Bufs {
    texts: Vec<String>,
    scratch: Scratch,
    text: String,
}

/// Runs `f` with this thread's work buffers (borrowed once for a whole
/// batch, in place). A nested call, should one ever happen, gets fresh ones.
/// No PDPs queued by an earlier use are left for `f` (every use settles its
/// own before it returns; this makes sure even an unwound one cannot leak
/// them into another database).
fn with_bufs<R>(f: impl FnOnce(&mut Bufs) -> R) -> R {
    BUFS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            bufs.scratch.discard_pending();
            f(&mut bufs)
        }
        Err(_) => f(&mut Bufs::default()),
    })
}

/// How many spans [`Rrd::hot_spans`] lists.
pub(crate) const HOT_SPANS: usize = 8;

/// A schema with its file layout. Databases of the same schema share one
/// (most stores hold a few schemas over many series), so an update reads the
/// shape from lines that stay in cache.
#[derive(Debug)]
struct Shape {
    schema: Schema,
    layout: Layout,
}

/// Shapes kept for sharing; at most this many different ones (a store with
/// more keeps the rest unshared, which costs memory, not correctness).
const SHARED_SHAPES: usize = 64;

static SHAPES: std::sync::Mutex<Vec<Arc<Shape>>> = std::sync::Mutex::new(Vec::new());

impl Shape {
    /// The shared shape of `schema`, made and kept if it is new.
    fn shared(schema: Schema, layout: Layout) -> Arc<Shape> {
        let Ok(mut shapes) = SHAPES.lock() else {
            return Arc::new(Shape { schema, layout });
        };
        if let Some(found) = shapes.iter().find(|s| s.schema == schema) {
            return Arc::clone(found);
        }
        let shape = Arc::new(Shape { schema, layout });
        if shapes.len() < SHARED_SHAPES {
            shapes.push(Arc::clone(&shape));
        }
        shape
    }
}

/// The outcome of a run of updates that stopped at `failed` (its index and
/// error) or ran to the end, `applied` of them taking effect.
fn batch_result(failed: Option<(usize, Error)>, applied: usize) -> Result<usize> {
    match failed {
        Some((index, source)) => Err(Error::Batch {
            index,
            applied,
            source: Box::new(source),
        }),
        None => Ok(applied),
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

fn lock(file: &File, exclusive: bool, path: &Path) -> Result<()> {
    let result = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match result {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("lock", path)(e)),
    }
}

/// Takes a shared lock on the lock file of the store whose data directory
/// holds `path` (a series file is `DATA/<metric>/<name>.rrd`), if there is
/// one: while it is held no store opens that directory, and while a store
/// is open this refuses with [`Error::InStore`]. So a database opened on its
/// own never writes a file a store has mapped (the store maps its files
/// under its directory lock, without a lock per file).
fn hold_enclosing_store(path: &Path) -> Result<Option<File>> {
    let absolute = match (std::fs::canonicalize(path), path.parent(), path.file_name()) {
        (Ok(p), _, _) => p,
        (Err(_), Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            let Ok(parent) = std::fs::canonicalize(parent) else { return Ok(None) };
            parent.join(name)
        }
        _ => return Ok(None),
    };
    for dir in absolute.ancestors().skip(1).take(2) {
        let lock_path = dir.join(crate::store::LOCK_FILE);
        let Ok(file) = File::open(&lock_path) else { continue };
        return match file.try_lock_shared() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InStore {
                path: path.to_path_buf(),
                store: dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err("lock", &lock_path)(e)),
        };
    }
    Ok(None)
}

/// The current time from the system clock.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        usec: d.subsec_micros(),
    }
}

fn random_rows(schema: &Schema) -> Vec<u64> {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    schema
        .archives
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            h.finish() % a.rows
        })
        .collect()
}

impl Rrd {
    /// Creates a database file at `path` and opens it for writing.
    ///
    /// The file is written beside its final name and renamed into place, so an
    /// existing file is never left half-overwritten.
    pub fn create(path: impl AsRef<Path>, schema: &Schema, opts: &CreateOptions) -> Result<Rrd> {
        let path = path.as_ref();
        schema.validate()?;
        let start = opts.start.unwrap_or_else(|| now().sec - 10);
        check_start(start)?;
        if let Some(rows) = &opts.cur_rows {
            if rows.len() != schema.archives.len() {
                return Err(Error::Schema {
                    field: "cur_rows",
                    value: format!("{rows:?}"),
                    reason: "needs one starting row per archive",
                });
            }
            for (row, rra) in rows.iter().zip(&schema.archives) {
                if *row >= rra.rows {
                    return Err(Error::Schema {
                        field: "cur_rows",
                        value: row.to_string(),
                        reason: "a starting row must be below the archive's row count",
                    });
                }
            }
        }
        check_target(path, opts.overwrite)?;
        create_file(path, schema, start, opts)?;
        Rrd::open(path)
    }

    /// Creates a database file at `path` holding `state` and `rows` (per
    /// archive, its rows in ring order), as an import or a restore does. The
    /// image is built and checked in memory, then written once and renamed
    /// into place.
    pub fn create_restored(path: impl AsRef<Path>, schema: &Schema, state: &State, rows: &[Vec<f64>], overwrite: bool) -> Result<Rrd> {
        let path = path.as_ref();
        let image = restored_image(schema, state, rows)?;
        check_target(path, overwrite)?;
        write_image(path, &image, false)?;
        Rrd::open(path)
    }

    /// Writes a restored image to `path` (renamed into place) without
    /// opening it: the store, under its directory lock, imports this way.
    pub(crate) fn write_restored(path: &Path, schema: &Schema, state: &State, rows: &[Vec<f64>]) -> Result<()> {
        write_image(path, &restored_image(schema, state, rows)?, false)
    }

    /// Opens a database the caller guarantees no one else opens: the store,
    /// under its directory lock. No per-file lock, no descriptor kept.
    pub(crate) fn open_in_store(path: &Path) -> Result<Rrd> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        let map = MappedFile::writable_detached(file).map_err(io_err("mmap", path))?;
        let mut db = Rrd::from_map(path, map)?;
        db.deferred = true;
        Ok(db)
    }

    /// Creates a database file for the store (no lock, no overwrite) and opens it.
    pub(crate) fn create_in_store(path: &Path, schema: &Schema, start: i64) -> Result<Rrd> {
        schema.validate()?;
        check_start(start)?;
        let opts = CreateOptions {
            start: Some(start),
            ..CreateOptions::default()
        };
        create_file(path, schema, start, &opts)?;
        Rrd::open_in_store(path)
    }
}

/// Writes a new database file beside `path` and renames it into place.
fn create_file(path: &Path, schema: &Schema, start: i64, opts: &CreateOptions) -> Result<()> {
    let cur_rows = opts.cur_rows.clone().unwrap_or_else(|| random_rows(schema));
    let mut image = Vec::new();
    encode_new(&mut image, schema, &State::new(schema, start, &cur_rows));
    write_image(path, &image, opts.sync)
}

/// Refuses an existing `path` unless `overwrite`, and one another writer has open.
fn check_target(path: &Path, overwrite: bool) -> Result<()> {
    drop(hold_enclosing_store(path)?);
    if !path.exists() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::Exists { path: path.to_path_buf() });
    }
    if let Ok(existing) = OpenOptions::new().read(true).write(true).open(path) {
        lock(&existing, true, path)?;
    }
    Ok(())
}

/// The image of a database of `schema` holding `state` and `rows`, checked
/// exactly as an open checks a file.
fn restored_image(schema: &Schema, state: &State, rows: &[Vec<f64>]) -> Result<Vec<u8>> {
    let opts = CreateOptions {
        start: Some(MIN_START),
        cur_rows: Some(state.cur_row.clone()),
        ..CreateOptions::default()
    };
    let mut db = Rrd::create_in_memory(schema, &opts)?;
    db.restore_state(state, rows)?;
    db.into_bytes().ok_or_else(|| Error::Corrupt {
        path: PathBuf::new(),
        what: "an in-memory image was expected".into(),
    })
}

impl Rrd {
    /// Opens a database for reading and writing, taking its exclusive lock.
    /// Everything is validated first; any damage gives an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Rrd> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        let store_lock = hold_enclosing_store(path)?;
        lock(&file, true, path)?;
        let map = MappedFile::writable(file).map_err(io_err("mmap", path))?;
        let mut db = Rrd::from_map(path, map)?;
        db._store_lock = store_lock;
        Ok(db)
    }

    /// Opens a database for reading only, taking a shared lock (several readers
    /// may share a file; a writer may not join them).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Rrd> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_err("open", path))?;
        lock(&file, false, path)?;
        let map = MappedFile::read_only(file).map_err(io_err("mmap", path))?;
        Rrd::from_map(path, map)
    }

    /// Opens a database image held in memory (no file, no lock). Validated
    /// exactly like a file; updates change the image, see [`Rrd::into_bytes`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Rrd> {
        Rrd::from_map(Path::new(""), MappedFile::memory(bytes))
    }

    /// Creates a new database image in memory.
    pub fn create_in_memory(schema: &Schema, opts: &CreateOptions) -> Result<Rrd> {
        schema.validate()?;
        let start = opts.start.unwrap_or_else(|| now().sec - 10);
        check_start(start)?;
        let cur_rows = opts.cur_rows.clone().unwrap_or_else(|| random_rows(schema));
        let state = State::new(schema, start, &cur_rows);
        let mut image = Vec::new();
        encode_new(&mut image, schema, &state);
        Rrd::from_bytes(image)
    }

    /// The database's bytes, exactly as they are (or would be) on disk.
    pub fn as_bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// The image of an in-memory database; `None` for a file-backed one.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        self.map.into_memory()
    }

    fn from_map(path: &Path, map: MappedFile) -> Result<Rrd> {
        let decoded = decode(map.bytes()).map_err(|e| e.at(path))?;
        Ok(Rrd {
            path: path.to_path_buf(),
            map,
            shape: Shape::shared(decoded.schema, decoded.layout),
            state: decoded.state,
            active_slot: decoded.active_slot,
            seq: decoded.seq,
            deferred: false,
            dirty: false,
            _store_lock: None,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's schema.
    pub fn schema(&self) -> &Schema {
        &self.shape.schema
    }

    /// The live state (last update, open PDPs and CDPs, ring positions).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Time of the last accepted update.
    pub fn last_update(&self) -> Timestamp {
        self.state.last_update
    }

    /// Updates with one value per data source; NaN means unknown.
    ///
    /// GAUGE and ABSOLUTE values are used exactly as given. COUNTER and DERIVE
    /// values must be whole numbers (differences are taken in exact decimal, as
    /// RRDtool does); DCOUNTER and DDERIVE values are taken as their shortest
    /// decimal text, which is also what `last_ds` records for every type. A
    /// rejected update changes nothing.
    pub fn update(&mut self, time: Timestamp, values: &[f64]) -> Result<()> {
        self.stage_typed(time, values)?;
        self.commit();
        Ok(())
    }

    /// Applies many updates in order, committing the state once at the end.
    ///
    /// On the first failing update, the ones before it stay applied (as with
    /// several arguments to `rrdtool update`) and [`Error::Batch`] says which failed.
    pub fn update_many<'a, I>(&mut self, updates: I) -> Result<usize>
    where
        I: IntoIterator<Item = (Timestamp, &'a [f64])>,
    {
        let mut applied = 0;
        let failed = self.staged(|db, bufs| {
            for (index, (time, values)) in updates.into_iter().enumerate() {
                if let Err(source) = db.stage_typed_in(bufs, time, values, false) {
                    return Some((index, source));
                }
                applied += 1;
            }
            None
        });
        self.commit_if(applied > 0);
        batch_result(failed, applied)
    }

    /// Applies single-value points in order, continuing past rejected ones;
    /// the state is committed once. `on_error` gets each rejected point's
    /// index and error. Returns how many were applied.
    pub fn update_points<I>(&mut self, points: I, mut on_error: impl FnMut(usize, Error)) -> usize
    where
        I: IntoIterator<Item = (Timestamp, f64)>,
    {
        let mut applied = 0;
        // `last_ds` keeps only the last accepted value's text, and GAUGE and
        // ABSOLUTE values are used exactly: their texts are written once, at the end.
        let textless = self.shape.schema.data_sources.len() == 1
            && self.shape.schema.data_sources.iter().all(|d| matches!(d.kind, DsType::Gauge | DsType::Absolute));
        let mut last_accepted = None;
        self.staged(|db, bufs| {
            for (index, (time, value)) in points.into_iter().enumerate() {
                match db.stage_typed_in(bufs, time, &[value], textless) {
                    Ok(()) => {
                        applied += 1;
                        last_accepted = Some(value);
                    }
                    Err(e) => on_error(index, e),
                }
            }
            if let (true, Some(value), Some(ds), Some(def)) =
                (textless, last_accepted, db.state.ds.first_mut(), db.shape.schema.data_sources.first())
                && update::value_text(def, value, &mut bufs.text).is_ok()
            {
                ds.last_ds = crate::state::LastDs::new(&bufs.text);
            }
        });
        self.commit_if(applied > 0);
        applied
    }

    /// Updates from RRDtool's text form, `TIME:V1:V2...` (or `AT-TIME@V1:V2...`),
    /// with RRDtool's own number parsing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let opts = rrdcore::CreateOptions { start: Some(1_000_000_000), ..Default::default() };
    /// # let mut db = rrdcore::Rrd::create(dir.path().join("a.rrd"), &rrdcore::Schema::default(), &opts).unwrap();
    /// db.update_text("1000000300:42").unwrap();
    /// db.update_text("1000000600.5:U").unwrap();
    /// assert!(db.update_text("1000000600:1").is_err()); // not after the last update
    /// ```
    pub fn update_text(&mut self, arg: &str) -> Result<()> {
        self.update_args(&[arg], &UpdateOptions::default()).map(|_| ())
    }

    /// Applies several text updates, as `rrdtool update FILE ARG...` does: in
    /// order, stopping at the first failure with the ones before it applied.
    /// Returns how many were applied (skipped ones are not counted).
    pub fn update_args<S: AsRef<str>>(&mut self, args: &[S], opts: &UpdateOptions) -> Result<usize> {
        let mut applied = 0;
        let failed = self.staged(|db, bufs| {
            for (index, arg) in args.iter().enumerate() {
                match db.stage_text(&mut bufs.scratch, arg.as_ref(), opts) {
                    Ok(true) => applied += 1,
                    Ok(false) => {}
                    Err(source) => return Some((index, source)),
                }
            }
            None
        });
        self.commit_if(applied > 0);
        match failed {
            Some((_, source)) if args.len() == 1 => Err(source),
            failed => batch_result(failed, applied),
        }
    }

    /// Reads rows back, choosing the archive as `rrdtool fetch` does.
    pub fn fetch(&self, req: &FetchRequest) -> Result<Fetched> {
        let source = MapSource {
            bytes: self.map.bytes(),
            layout: &self.shape.layout,
        };
        fetch::fetch(&self.shape.schema, self.state.last_update.sec, &self.state.cur_row, req, &source)
    }

    /// The database's full description and state.
    pub fn info(&self) -> Info {
        Info {
            path: self.path.clone(),
            format_version: header::VERSION,
            header_size: self.shape.layout.data_offset,
            file_size: self.shape.layout.file_len,
            schema: self.shape.schema.clone(),
            state: self.state.clone(),
        }
    }

    /// One stored value: data source `ds` in ring row `row` of archive `rra`
    /// (`None` when out of range).
    pub fn stored_value(&self, rra: usize, row: u64, ds: usize) -> Option<f64> {
        let a = self.shape.schema.archives.get(rra)?;
        if row >= a.rows || ds >= self.shape.schema.data_sources.len() {
            return None;
        }
        Some(read_value(self.map.bytes(), &self.shape.layout, rra, row, ds))
    }

    /// Replaces the live state and every row (an import or a restore). The
    /// state is checked exactly as on open; `rows` holds, per archive, its rows
    /// in ring order, `rows x data sources` values each.
    pub fn restore_state(&mut self, state: &State, rows: &[Vec<f64>]) -> Result<()> {
        let bad = |what: String| Error::Corrupt {
            path: self.path.clone(),
            what,
        };
        let mut buf = Vec::new();
        live::encode(state, 0, &mut buf);
        let (_, checked) = live::decode(&buf, &self.shape.schema).map_err(|e| bad(format!("state to restore: {e}")))?;
        if checked.ds.len() != self.shape.schema.data_sources.len() || rows.len() != self.shape.schema.archives.len() {
            return Err(bad("state or rows do not match the schema".into()));
        }
        let ds_count = self.shape.schema.data_sources.len();
        for (r, (rra, values)) in self.shape.schema.archives.iter().zip(rows).enumerate() {
            if values.len() as u64 != rra.rows * ds_count as u64 {
                return Err(bad(format!("archive {r}: {} values, expected {}", values.len(), rra.rows * ds_count as u64)));
            }
        }
        let Some(bytes) = self.map.bytes_mut() else {
            return Err(Error::ReadOnly { path: self.path.clone() });
        };
        let mut sink = MapSink { bytes, layout: &self.shape.layout };
        for (r, values) in rows.iter().enumerate() {
            for (i, v) in values.iter().enumerate() {
                sink.write(r, (i / ds_count) as u64, i % ds_count, *v);
            }
        }
        self.state = checked;
        self.commit();
        Ok(())
    }

    /// Replaces this database's file with a new one of `schema`, `state` and
    /// `rows` (written beside and renamed over it), and opens that.
    pub(crate) fn replace(self, schema: &Schema, state: &State, rows: &[Vec<f64>], path: &Path) -> Result<Rrd> {
        let image = restored_image(schema, state, rows)?;
        // Renamed over the file this handle still maps and locks; the handle
        // goes only after the new file is in place.
        write_image(path, &image, true)?;
        drop(self);
        Rrd::open(path)
    }

    /// The memory an update of this database touches next, as packed
    /// [`crate::prefetch::span`]s: this handle, its state, the live slot the
    /// next commit writes, and the next row of the first archives. Hints
    /// for [`crate::Store::prefetch`]; never dereferenced.
    pub(crate) fn hot_spans(&self) -> [usize; HOT_SPANS] {
        use crate::prefetch::span;
        let s = &self.state;
        let layout = &self.shape.layout;
        let base = self.map.bytes().as_ptr().addr();
        let at = |offset: u64, len: u64| usize::try_from(offset).ok().zip(usize::try_from(len).ok()).map_or(0, |(o, l)| span(base + o, l));
        let mut spans = [
            span(std::ptr::from_ref(self).addr(), size_of::<Rrd>()),
            span(s.ds.as_ptr().addr(), size_of_val(s.ds.as_slice())),
            span(s.cdp.as_ptr().addr(), size_of_val(s.cdp.as_slice())),
            span(s.cur_row.as_ptr().addr(), size_of_val(s.cur_row.as_slice())),
            at(layout.slot_offset(1 - self.active_slot), layout.slot_len),
            0,
            0,
            0,
        ];
        let rows = self.shape.schema.archives.iter().zip(&s.cur_row).enumerate();
        for ((r, (rra, cur)), out) in rows.zip(spans.iter_mut().skip(5)) {
            let next = if cur + 1 >= rra.rows { 0 } else { cur + 1 };
            *out = at(layout.value_offset(r, next, 0), layout.ds_count * crate::format::VALUE_LEN);
        }
        spans
    }

    /// Writes everything to disk and waits for it (msync).
    pub fn flush(&self) -> Result<()> {
        crate::sync::map(&self.path, || self.map.flush()).map_err(io_err("msync", &self.path))
    }

    fn stage_typed(&mut self, time: Timestamp, values: &[f64]) -> Result<()> {
        self.staged(|db, bufs| db.stage_typed_in(bufs, time, values, false))
    }

    /// Runs `stage` (updates staged through `stage_in`) with this thread's
    /// work buffers, then settles them: the one way updates reach the rows.
    fn staged<R>(&mut self, stage: impl FnOnce(&mut Rrd, &mut Bufs) -> R) -> R {
        with_bufs(|bufs| {
            let out = stage(self, bufs);
            self.settle(&mut bufs.scratch);
            out
        })
    }

    /// [`Rrd::stage_typed`] with the work buffers at hand. `textless`: the
    /// database has one GAUGE or ABSOLUTE data source (the caller checked),
    /// whose value gets no decimal text; the caller writes `last_ds`.
    #[inline(always)]
    fn stage_typed_in(&mut self, bufs: &mut Bufs, time: Timestamp, values: &[f64], textless: bool) -> Result<()> {
        if values.len() != self.shape.schema.data_sources.len() {
            return Err(Error::ValueCount {
                expected: self.shape.schema.data_sources.len(),
                got: values.len(),
            });
        }
        let Bufs { texts, scratch, .. } = bufs;
        if textless && let [value] = values {
            // The common case of a batch: one exact value, whose text only
            // tells unknown (`U`) from known.
            let text = if value.is_nan() { "U" } else { "" };
            return self.stage_in(scratch, time, &[text], Some(values), false);
        }
        texts.resize_with(values.len().max(texts.len()), String::new);
        for ((ds, v), out) in self.shape.schema.data_sources.iter().zip(values).zip(texts.iter_mut()) {
            update::value_text(ds, *v, out)?;
        }
        // Up to 8 data sources without allocating.
        let mut small = [""; 8];
        let refs: Vec<&str>;
        let refs: &[&str] = if values.len() <= small.len() {
            for (dst, t) in small.iter_mut().zip(texts.iter()) {
                *dst = t.as_str();
            }
            small.get(..values.len()).unwrap_or_default()
        } else {
            refs = texts.iter().take(values.len()).map(String::as_str).collect();
            &refs
        };
        self.stage_in(scratch, time, refs, Some(values), true)
    }

    /// Parses one text argument and applies it; `Ok(false)` when skipped.
    fn stage_text(&mut self, scratch: &mut Scratch, arg: &str, opts: &UpdateOptions) -> Result<bool> {
        let now = opts.now.unwrap_or_else(now);
        let (time_text, rest) = match arg.split_once('@') {
            Some((t, rest)) => (t, rest),
            None => arg.split_once(':').unwrap_or((arg, "")),
        };
        let time = parse_update_time(time_text, arg.contains('@'), now)?;
        let given: Vec<&str> = rest.split(':').collect();
        let values: Vec<&str> = match &opts.template {
            None => given,
            Some(names) => self.apply_template(names, &given)?,
        };
        if opts.skip_past && time <= self.state.last_update {
            return Ok(false);
        }
        self.stage_in(scratch, time, &values, None, true)?;
        Ok(true)
    }

    fn apply_template<'a>(&self, names: &[String], given: &[&'a str]) -> Result<Vec<&'a str>> {
        if names.len() != given.len() {
            return Err(Error::ValueCount {
                expected: names.len(),
                got: given.len(),
            });
        }
        let mut values = vec!["U"; self.shape.schema.data_sources.len()];
        for (name, value) in names.iter().zip(given) {
            let i = self.shape.schema.ds_index(name).ok_or_else(|| Error::Value {
                ds: name.clone(),
                kind: "template",
                value: name.clone(),
                reason: "no data source of that name",
            })?;
            if let Some(slot) = values.get_mut(i) {
                *slot = value;
            }
        }
        Ok(values)
    }

    /// Validates and applies one update to the in-memory state; `exact`:
    /// typed values, used as given for GAUGE and ABSOLUTE; `set_last` keeps
    /// `values` as the data sources' `last_ds`.
    ///
    /// The rows it finishes are written by [`Rrd::settle`], which
    /// [`Rrd::staged`] calls after its callers' updates.
    #[inline(always)]
    fn stage_in(&mut self, scratch: &mut Scratch, time: Timestamp, values: &[&str], exact: Option<&[f64]>, set_last: bool) -> Result<()> {
        if self.map.bytes_mut().is_none() {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        let interval = update::prepare(&self.shape.schema, &self.state, time, values, exact, scratch)?;
        update::apply(&self.shape.schema, &mut self.state, time, interval, set_last.then_some(values), scratch);
        Ok(())
    }

    /// Consolidates what the updates staged since the last call closed, and
    /// writes the rows they finish.
    fn settle(&mut self, scratch: &mut Scratch) {
        let Some(bytes) = self.map.bytes_mut() else {
            // Nothing is staged: `stage_in` refuses a read-only map.
            scratch.discard_pending();
            return;
        };
        let mut sink = MapSink {
            bytes,
            layout: &self.shape.layout,
        };
        update::settle(&self.shape.schema, &mut self.state, scratch, &mut sink);
    }

    fn commit_if(&mut self, changed: bool) {
        if changed {
            self.commit();
        }
    }

    /// Records that the in-memory state changed: a database of its own
    /// writes it to its slot at once ([`Rrd::write_slot`]); a store's
    /// waits for [`Rrd::checkpoint`].
    fn commit(&mut self) {
        if self.deferred {
            self.dirty = true;
        } else {
            self.write_slot();
        }
    }

    /// Writes the in-memory state to the slot that is not current, then makes it current.
    fn write_slot(&mut self) {
        let next = self.seq.wrapping_add(1);
        let slot = 1 - self.active_slot;
        let layout = &self.shape.layout;
        let range = usize::try_from(layout.slot_offset(slot)).ok().zip(usize::try_from(layout.slot_len).ok());
        // Encoded in place: the slot is not current, so a reader never sees
        // it half written, and a crash meanwhile leaves a slot whose CRC fails.
        let dst = range.and_then(|(o, n)| self.map.bytes_mut()?.get_mut(o..o + n));
        if let Some(dst) = dst
            && live::encode_into(&self.state, next, dst)
        {
            self.active_slot = slot;
            self.seq = next;
            self.dirty = false;
        }
    }

    /// Makes the file reflect every update so far, in the order a power cut
    /// cannot undo: the rows are synced first, then the live state is
    /// written to its spare slot and synced. Until then the file's live
    /// state is the one of the previous checkpoint, whatever pages the
    /// kernel writes back meanwhile, so the state on disk never claims rows
    /// that are not there. (A database opened on its own writes its state
    /// at every update, as RRDtool does; for it this is [`Rrd::flush`].)
    ///
    /// A failed sync leaves the state unwritten: the file keeps claiming
    /// only what was synced before.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.flush()?;
        if self.dirty {
            self.write_slot();
            self.flush_state()?;
        }
        Ok(())
    }

    /// Closes a store's database, handing back its unwritten state, if
    /// any, for [`Rrd::adopt`] or a later checkpoint.
    pub(crate) fn park(self) -> Option<Parked> {
        let Rrd { path, state, dirty, .. } = self;
        dirty.then_some(Parked { path, state })
    }

    /// Takes back the state a [`Rrd::park`] of this file handed out.
    pub(crate) fn adopt(&mut self, parked: Parked) {
        self.state = parked.state;
        self.dirty = true;
    }

    /// Writes the live state to disk and waits for it (cheaper than [`Rrd::flush`]
    /// when only the state matters, e.g. after a journal replay).
    pub fn flush_state(&self) -> Result<()> {
        let len = usize::try_from(self.shape.layout.data_offset).unwrap_or(0);
        crate::sync::map(&self.path, || self.map.flush_range(0, len)).map_err(io_err("msync", &self.path))
    }
}

fn check_start(start: i64) -> Result<()> {
    if (MIN_START..=crate::state::MAX_TIME).contains(&start) {
        return Ok(());
    }
    Err(Error::Schema {
        field: "start",
        value: start.to_string(),
        reason: "start time should be after 1980 and at most 2^52",
    })
}

fn parse_update_time(text: &str, at_style: bool, now: Timestamp) -> Result<Timestamp> {
    let bad = |reason| Error::Time {
        value: text.to_owned(),
        reason,
    };
    if at_style {
        let sec = crate::timespec::parse(text, now.sec, None, None)?;
        return Ok(Timestamp::from_secs(sec));
    }
    if text == "N" {
        return Ok(now);
    }
    let mut t = number::parse_full(text).ok_or_else(|| bad("not a number, N or an at-style time ending in @"))?;
    if t < 0.0 {
        #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
        let base = now.sec as f64 + f64::from(now.usec) * 1e-6;
        t += base;
    }
    Timestamp::from_f64(t).ok_or_else(|| bad("time out of range"))
}

/// Renames the finished `tmp` over `path`; on any failure (of the writing,
/// given as `written`, or of the rename) removes `tmp` and returns the error.
fn commit_file(written: Result<()>, tmp: &Path, path: &Path) -> Result<()> {
    let renamed = written.and_then(|()| std::fs::rename(tmp, path).map_err(io_err("rename", path)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    renamed
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Encodes a complete new database image into `out`.
fn encode_new(out: &mut Vec<u8>, schema: &Schema, state: &State) {
    let layout = Layout::of(schema);
    out.clear();
    out.extend_from_slice(&header::encode(schema));
    let mut slot = Vec::new();
    live::encode(state, 1, &mut slot);
    out.extend_from_slice(&slot);
    live::encode(state, 0, &mut slot);
    out.extend_from_slice(&slot);
    let nan = DNAN.to_le_bytes();
    let len = usize::try_from(layout.file_len).unwrap_or(0);
    while out.len() < len {
        out.extend_from_slice(&nan);
    }
}

/// The page size assumed for write granularity.
const PAGE: usize = 4096;

/// Writes a complete database image beside `path` and renames it into place
/// (removing the temporary file on any failure).
fn write_image(path: &Path, image: &[u8], sync: bool) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        // Page-sized writes: the kernel then caches the file in page-sized folios,
        // so a later 8-byte update dirties (and writes back) 4 KiB, not a large folio.
        for chunk in image.chunks(PAGE) {
            file.write_all(chunk).map_err(io_err("write", &tmp))?;
        }
        if sync {
            file.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        Ok(())
    })();
    commit_file(written, &tmp, path)
}

/// A decoded, validated database image.
pub(crate) struct Decoded {
    pub schema: Schema,
    pub layout: Layout,
    pub state: State,
    pub active_slot: usize,
    pub seq: u64,
    /// Why the other slot was not usable, when it was not (a torn last write).
    pub other_slot_error: Option<String>,
}

/// A decode failure, before the path is known.
pub(crate) enum DecodeError {
    Corrupt(String),
    Version(u32),
}

impl DecodeError {
    pub(crate) fn at(self, path: &Path) -> Error {
        match self {
            DecodeError::Corrupt(what) => Error::Corrupt {
                path: path.to_path_buf(),
                what,
            },
            DecodeError::Version(version) => Error::Version {
                path: path.to_path_buf(),
                version,
            },
        }
    }
}

/// Decodes and checks a whole database image: header, length, both slots.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let (schema, _) = header::decode(bytes).map_err(|e| match e {
        header::HeaderError::Corrupt(what) => DecodeError::Corrupt(what),
        header::HeaderError::Version(v) => DecodeError::Version(v),
    })?;
    let layout = Layout::of(&schema);
    if bytes.len() as u64 != layout.file_len {
        return Err(DecodeError::Corrupt(format!(
            "file is {} bytes, its schema needs {}",
            bytes.len(),
            layout.file_len
        )));
    }
    let slot = |i: usize| {
        let start = usize::try_from(layout.slot_offset(i)).unwrap_or(usize::MAX);
        let len = usize::try_from(layout.slot_len).unwrap_or(0);
        let raw = bytes.get(start..start.saturating_add(len)).unwrap_or_default();
        live::decode(raw, &schema)
    };
    let (a, b) = (slot(0), slot(1));
    let (active_slot, seq, state, other_slot_error) = match (a, b) {
        (Ok((sa, a)), Ok((sb, b))) => {
            if sb > sa {
                (1, sb, b, None)
            } else {
                (0, sa, a, None)
            }
        }
        (Ok((sa, a)), Err(eb)) => (0, sa, a, Some(eb)),
        (Err(ea), Ok((sb, b))) => (1, sb, b, Some(ea)),
        (Err(ea), Err(eb)) => {
            return Err(DecodeError::Corrupt(format!(
                "both live-state slots are damaged (A: {ea}; B: {eb})"
            )));
        }
    };
    Ok(Decoded {
        schema,
        layout,
        state,
        active_slot,
        seq,
        other_slot_error,
    })
}

fn read_value(bytes: &[u8], layout: &Layout, rra: usize, row: u64, ds: usize) -> f64 {
    let offset = usize::try_from(layout.value_offset(rra, row, ds)).unwrap_or(usize::MAX);
    bytes
        .get(offset..offset.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(DNAN, f64::from_le_bytes)
}

struct MapSource<'a> {
    bytes: &'a [u8],
    layout: &'a Layout,
}

impl RowSource for MapSource<'_> {
    fn read_rows(&self, rra: usize, first: u64, count: u64, out: &mut Vec<f64>) {
        let from = usize::try_from(self.layout.value_offset(rra, first, 0)).unwrap_or(usize::MAX);
        let len = usize::try_from(count * self.layout.ds_count * 8).unwrap_or(usize::MAX);
        let bytes = self.bytes.get(from..from.saturating_add(len)).unwrap_or_default();
        out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| <[u8; 8]>::try_from(c).map_or(DNAN, f64::from_le_bytes)),
        );
    }
}

struct MapSink<'a> {
    bytes: &'a mut [u8],
    layout: &'a Layout,
}

impl RowSink for MapSink<'_> {
    fn write(&mut self, rra: usize, row: u64, ds: usize, value: f64) {
        let offset = usize::try_from(self.layout.value_offset(rra, row, ds)).unwrap_or(usize::MAX);
        if let Some(dst) = self.bytes.get_mut(offset..offset.saturating_add(8)) {
            dst.copy_from_slice(&value.to_le_bytes());
        }
    }
}

/// Checks a database image in memory without opening a file: the same
/// validation [`Rrd::open`] performs. Returns a short report of what was found.
pub fn check_bytes(bytes: &[u8]) -> Result<CheckReport> {
    let d = decode(bytes).map_err(|e| e.at(Path::new("")))?;
    Ok(CheckReport {
        last_update: d.state.last_update,
        sequence: d.seq,
        torn_slot: d.other_slot_error,
    })
}

/// What [`check_bytes`] found in a valid image.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Last update of the state in use.
    pub last_update: Timestamp,
    /// Sequence number of the state in use.
    pub sequence: u64,
    /// When the other live-state slot is damaged (typically a torn last write), why.
    pub torn_slot: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of the file an update changes lies in a span that
    /// `hot_spans` listed before it (the hints point at the right memory).
    #[test]
    fn hot_spans_cover_what_the_next_update_writes() {
        let opts = CreateOptions { start: Some(1_000_000_000), ..CreateOptions::default() };
        let mut db = Rrd::create_in_memory(&Schema::monitoring_default(), &opts).unwrap();
        let mut t = 1_000_000_000;
        for round in 0..700 {
            let spans = db.hot_spans();
            let before = db.as_bytes().to_vec();
            let base = db.as_bytes().as_ptr().addr();
            t += 300;
            db.update(Timestamp::from_secs(t), &[f64::from(round)]).unwrap();
            let covered = |offset: usize| {
                let addr = base + offset;
                spans.iter().any(|&s| s != 0 && (s & !63..=(s & !63) + 64 * (s & 63) + 63).contains(&addr))
            };
            for (offset, (a, b)) in before.iter().zip(db.as_bytes()).enumerate() {
                // The daily archive's row is written once in 288 updates and not hinted.
                let daily = db.shape.layout.rra_offsets.get(3).is_some_and(|&o| offset as u64 >= o);
                assert!(a == b || daily || covered(offset), "round {round}: byte {offset} changed outside the hinted spans");
            }
        }
    }
}
