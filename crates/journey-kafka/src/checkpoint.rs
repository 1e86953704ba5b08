//! Local state checkpoints: one file per partition in `state_dir`, holding every customer's
//! state as of a committed transaction and the changelog offset that state covers.
//!
//! On assignment a valid checkpoint is loaded and only the changelog after its offset is
//! replayed; anything wrong with it (missing, foreign, stale, corrupt, truncated, another format)
//! falls back to the full changelog restore, never to wrong state (docs/operations.md,
//! "Recovery").
//!
//! Why a snapshot file rather than an embedded store (RocksDB, fjall, redb): the engine keeps
//! every customer in memory and already has a binary encoding of one customer's state (the
//! changelog value, `Engine::export_customer`/`import_customer`), so a checkpoint is that
//! encoding for every customer, read sequentially at disk speed and imported without any
//! translation. An embedded store would duplicate the state on disk *and* in memory, add a
//! native dependency, and still need the whole partition loaded into the engine before it can
//! process; its one advantage, incremental writes, matters little when checkpoints are written
//! every [`CHECKPOINT_INTERVAL`] and the changelog covers the rest.
//!
//! File layout (little-endian):
//!
//! ```text
//! magic      8 bytes  "JDSTATE\n"
//! format     u32      CHECKPOINT_FORMAT
//! header     u32 length + JSON (group, state topic, partition, changelog offset, customers,
//!                     written at)
//! customers  repeated u32 id length + id (UTF-8) + u32 state length + state
//! checksum   u64      XXH3-64 of every byte before it
//! ```
//!
//! A file is written to a temporary name, flushed to disk (`fsync`), renamed over the old one
//! and the directory flushed, so a crash leaves either the old or the new checkpoint, whole.

use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use xxhash_rust::xxh3::xxh3_64;

/// The file format written by this version.
pub const CHECKPOINT_FORMAT: u32 = 1;
/// How often an active partition whose state changed is checkpointed (besides revocation and
/// shutdown).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// A checkpoint older than this is not used: a compacted changelog drops tombstones after
/// `delete.retention.ms` (Kafka's default: one day), after which replaying from an old offset
/// could miss a customer's deletion.
pub const MAX_CHECKPOINT_AGE: Duration = Duration::from_secs(12 * 3600);

const MAGIC: &[u8; 8] = b"JDSTATE\n";

/// Which partition's state a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointId {
    pub group_id: String,
    pub state_topic: String,
    pub partition: i32,
}

/// What a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(flatten)]
    pub id: CheckpointId,
    /// The first changelog offset *not* covered: replay starts here.
    pub changelog_offset: i64,
    pub customers: u64,
    /// Milliseconds since the epoch.
    pub written_at_ms: i64,
}

/// Why a checkpoint was not used (the `reason` label of
/// `journeyd_checkpoint_fallbacks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// No checkpoint for the partition.
    Missing,
    /// The file could not be read.
    Unreadable,
    /// Shorter than its content says.
    Truncated,
    /// The checksum does not match, or the content does not decode.
    Corrupt,
    /// Written in another (older or newer) format.
    Format,
    /// Of another group, state topic or partition.
    Foreign,
    /// Too old, or its offset is outside the changelog's current range.
    Stale,
    /// A customer's state in it could not be imported by the engine.
    Undecodable,
}

impl Fallback {
    pub fn label(self) -> &'static str {
        match self {
            Fallback::Missing => "missing",
            Fallback::Unreadable => "unreadable",
            Fallback::Truncated => "truncated",
            Fallback::Corrupt => "corrupt",
            Fallback::Format => "format",
            Fallback::Foreign => "foreign",
            Fallback::Stale => "stale",
            Fallback::Undecodable => "undecodable",
        }
    }
}

/// A checkpoint read and verified (checksum, format, identity), ready to be imported customer
/// by customer.
#[derive(Debug)]
pub struct Checkpoint {
    pub header: Header,
    bytes: Vec<u8>,
    /// Position of the next customer in `bytes`.
    cursor: usize,
    /// End of the customer entries (start of the checksum).
    end: usize,
    /// Size of the file.
    pub size: u64,
}

impl Checkpoint {
    /// Parses and verifies a checkpoint file's bytes for partition `expected`.
    pub fn parse(bytes: Vec<u8>, expected: &CheckpointId) -> Result<Checkpoint, Fallback> {
        let size = bytes.len() as u64;
        if bytes.len() < MAGIC.len() + 4 {
            return Err(Fallback::Truncated);
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(Fallback::Corrupt);
        }
        let format = read_u32(&bytes, MAGIC.len()).ok_or(Fallback::Truncated)?;
        if format != CHECKPOINT_FORMAT {
            return Err(Fallback::Format);
        }
        if bytes.len() < MAGIC.len() + 8 + 8 {
            return Err(Fallback::Truncated);
        }
        let end = bytes.len() - 8;
        let stored = u64::from_le_bytes(bytes[end..].try_into().map_err(|_| Fallback::Truncated)?);
        if xxh3_64(&bytes[..end]) != stored {
            // A file cut short is the usual cause; both mean the same: not usable.
            return Err(Fallback::Corrupt);
        }
        let header_len = read_u32(&bytes, MAGIC.len() + 4).ok_or(Fallback::Truncated)? as usize;
        let header_start = MAGIC.len() + 8;
        let cursor = header_start
            .checked_add(header_len)
            .filter(|c| *c <= end)
            .ok_or(Fallback::Truncated)?;
        let header: Header =
            serde_json::from_slice(&bytes[header_start..cursor]).map_err(|_| Fallback::Corrupt)?;
        if header.id != *expected {
            return Err(Fallback::Foreign);
        }
        Ok(Checkpoint {
            header,
            bytes,
            cursor,
            end,
            size,
        })
    }

    /// Hands up to `max` customers to `import` (id, state bytes); returns how many. Zero means
    /// every customer was handed over. An entry that does not fit the file is `Truncated`.
    pub fn next_batch(
        &mut self,
        max: usize,
        mut import: impl FnMut(&str, &[u8]) -> Result<(), Fallback>,
    ) -> Result<usize, Fallback> {
        let mut n = 0;
        while n < max && self.cursor < self.end {
            let (id, state, next) = entry(&self.bytes[..self.end], self.cursor)?;
            import(id, state)?;
            self.cursor = next;
            n += 1;
        }
        Ok(n)
    }

    /// Whether every customer was handed over.
    pub fn is_done(&self) -> bool {
        self.cursor >= self.end
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(slice.try_into().ok()?))
}

/// One customer entry at `at`: id, state, position after it.
fn entry(bytes: &[u8], at: usize) -> Result<(&str, &[u8], usize), Fallback> {
    let id_len = read_u32(bytes, at).ok_or(Fallback::Truncated)? as usize;
    let id_start = at + 4;
    let id_end = id_start.checked_add(id_len).ok_or(Fallback::Truncated)?;
    let id = bytes.get(id_start..id_end).ok_or(Fallback::Truncated)?;
    let id = std::str::from_utf8(id).map_err(|_| Fallback::Corrupt)?;
    let state_len = read_u32(bytes, id_end).ok_or(Fallback::Truncated)? as usize;
    let state_start = id_end + 4;
    let state_end = state_start
        .checked_add(state_len)
        .ok_or(Fallback::Truncated)?;
    let state = bytes
        .get(state_start..state_end)
        .ok_or(Fallback::Truncated)?;
    Ok((id, state, state_end))
}

/// Builds a checkpoint file's bytes in memory.
pub struct CheckpointWriter {
    bytes: Vec<u8>,
    customers: u64,
}

impl CheckpointWriter {
    pub fn new(capacity: usize) -> Self {
        CheckpointWriter {
            bytes: Vec::with_capacity(capacity),
            customers: 0,
        }
    }

    /// Adds one customer.
    pub fn customer(&mut self, id: &str, state: &[u8]) {
        self.bytes
            .extend_from_slice(&(id.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(id.as_bytes());
        self.bytes
            .extend_from_slice(&(state.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(state);
        self.customers += 1;
    }

    /// Adds one customer whose state `write` appends to the buffer it is given (saving a copy
    /// of the state); `write` answers false, having appended nothing, when the customer has no
    /// state, and then nothing is added. Returns what `write` answered.
    pub fn customer_with(&mut self, id: &str, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let start = self.bytes.len();
        self.bytes
            .extend_from_slice(&(id.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(id.as_bytes());
        let len_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        if !write(&mut self.bytes) {
            self.bytes.truncate(start);
            return false;
        }
        let len = (self.bytes.len() - len_at - 4) as u32;
        self.bytes[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        self.customers += 1;
        true
    }

    /// The whole file: magic, format, header, the customers added, checksum.
    pub fn finish(
        self,
        id: CheckpointId,
        changelog_offset: i64,
        written_at: SystemTime,
    ) -> Vec<u8> {
        let header = Header {
            id,
            changelog_offset,
            customers: self.customers,
            written_at_ms: written_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + header.len() + self.bytes.len() + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&CHECKPOINT_FORMAT.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.bytes);
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }
}

/// Why the checkpoint directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("state_dir {path} is not writable: {source}")]
pub struct StateDirError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The checkpoint files of one group and state topic: `<state_dir>/<group_id>/<state_topic>-<partition>.checkpoint`.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    group_id: String,
    state_topic: String,
}

impl CheckpointStore {
    /// Creates the directory when needed and checks that it is writable (a file is created,
    /// flushed and removed), so that a bad `state_dir` fails the start naming the path.
    pub fn open(
        state_dir: &Path,
        group_id: &str,
        state_topic: &str,
    ) -> Result<Self, StateDirError> {
        let dir = state_dir.join(sanitize(group_id));
        let err = |source| StateDirError {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(err)?;
        let probe = dir.join(".journeyd-write-test");
        File::create(&probe)
            .and_then(|mut f| f.write_all(b"ok").and_then(|()| f.sync_all()))
            .map_err(err)?;
        fs::remove_file(&probe).map_err(err)?;
        Ok(CheckpointStore {
            dir,
            group_id: group_id.to_owned(),
            state_topic: state_topic.to_owned(),
        })
    }

    /// The identity a checkpoint of `partition` must carry.
    pub fn id(&self, partition: i32) -> CheckpointId {
        CheckpointId {
            group_id: self.group_id.clone(),
            state_topic: self.state_topic.clone(),
            partition,
        }
    }

    /// The file of `partition`.
    pub fn path(&self, partition: i32) -> PathBuf {
        self.dir.join(format!(
            "{}-{partition}.checkpoint",
            sanitize(&self.state_topic)
        ))
    }

    /// Reads and verifies the checkpoint of `partition`.
    pub fn load(&self, partition: i32) -> Result<Checkpoint, Fallback> {
        let bytes = match fs::read(self.path(partition)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Fallback::Missing),
            Err(_) => return Err(Fallback::Unreadable),
        };
        Checkpoint::parse(bytes, &self.id(partition))
    }

    /// Writes a checkpoint file atomically (temporary file, fsync, rename, fsync of the
    /// directory). Returns its size.
    pub fn write(&self, partition: i32, bytes: &[u8]) -> io::Result<u64> {
        let path = self.path(partition);
        // A name of this write's own: two writers (threads, or instances sharing a directory)
        // never write the same temporary file.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!(
            "checkpoint.{}-{}.tmp",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(bytes.len() as u64)
    }
}

/// A file-name-safe form of a group or topic name (Kafka names are `[a-zA-Z0-9._-]`; anything
/// else becomes `_`).
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(p: i32) -> CheckpointId {
        CheckpointId {
            group_id: "journeyd".into(),
            state_topic: "journeyd.state".into(),
            partition: p,
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = CheckpointWriter::new(64);
        w.customer("c1", b"\x01state-one");
        assert!(!w.customer_with("gone", |_| false));
        assert!(w.customer_with("c2", |buf| {
            buf.extend_from_slice(b"\x01two");
            true
        }));
        w.finish(id(3), 42, SystemTime::now())
    }

    fn all(mut c: Checkpoint) -> Result<Vec<(String, Vec<u8>)>, Fallback> {
        let mut out = Vec::new();
        while c.next_batch(1, |k, v| {
            out.push((k.to_owned(), v.to_vec()));
            Ok(())
        })? > 0
        {}
        assert!(c.is_done());
        Ok(out)
    }

    #[test]
    fn round_trip() {
        let c = Checkpoint::parse(sample(), &id(3)).unwrap();
        assert_eq!(c.header.changelog_offset, 42);
        assert_eq!(c.header.customers, 2);
        assert_eq!(
            all(c).unwrap(),
            [
                ("c1".to_owned(), b"\x01state-one".to_vec()),
                ("c2".to_owned(), b"\x01two".to_vec())
            ]
        );
    }

    #[test]
    fn foreign_truncated_corrupt_and_other_formats_are_refused() {
        assert_eq!(
            Checkpoint::parse(sample(), &id(4)).unwrap_err(),
            Fallback::Foreign
        );
        let mut other_topic = id(3);
        other_topic.state_topic = "other.state".into();
        assert_eq!(
            Checkpoint::parse(sample(), &other_topic).unwrap_err(),
            Fallback::Foreign
        );
        let bytes = sample();
        for cut in [0, 5, 12, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = Checkpoint::parse(bytes[..cut].to_vec(), &id(3)).unwrap_err();
            assert!(
                matches!(err, Fallback::Truncated | Fallback::Corrupt),
                "cut at {cut}: {err:?}"
            );
        }
        let mut flipped = sample();
        let at = flipped.len() - 12;
        flipped[at] ^= 0x40;
        assert_eq!(
            Checkpoint::parse(flipped, &id(3)).unwrap_err(),
            Fallback::Corrupt
        );
        for format in [CHECKPOINT_FORMAT - 1, CHECKPOINT_FORMAT + 1] {
            let mut other = sample();
            other[8..12].copy_from_slice(&format.to_le_bytes());
            assert_eq!(
                Checkpoint::parse(other, &id(3)).unwrap_err(),
                Fallback::Format
            );
        }
        assert_eq!(
            Checkpoint::parse(b"not a checkpoint at all".to_vec(), &id(3)).unwrap_err(),
            Fallback::Corrupt
        );
    }

    #[test]
    fn store_writes_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), "journeyd", "journeyd.state").unwrap();
        assert_eq!(store.load(3).unwrap_err(), Fallback::Missing);
        let size = store.write(3, &sample()).unwrap();
        assert_eq!(size, sample().len() as u64);
        let c = store.load(3).unwrap();
        assert_eq!(c.size, size);
        assert_eq!(all(c).unwrap().len(), 2);
        // A checkpoint of partition 3 copied to partition 5's name is foreign there.
        fs::copy(store.path(3), store.path(5)).unwrap();
        assert_eq!(store.load(5).unwrap_err(), Fallback::Foreign);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("journeyd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_unwritable_state_dir_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be (permissions would not stop root).
        let blocked = dir.path().join("file");
        fs::write(&blocked, b"x").unwrap();
        let err = CheckpointStore::open(&blocked, "journeyd", "s").unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "state_dir {} is not writable: ",
                blocked.join("journeyd").display()
            )),
            "{err}"
        );
    }
}
