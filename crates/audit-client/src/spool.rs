//! The spool: a local file of events waiting for the audit service, one base64 protobuf
//! per line, sent from the front. A byte cursor (in memory) marks what was already
//! delivered, so draining reads each line once; the file is emptied once everything in
//! it was delivered.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::Message as _;
use tessera_proto::audit::v1 as pb;
use tessera_telemetry::metrics::Gauge;

pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    /// Bytes of the file already delivered.
    delivered: u64,
    /// Bytes of the file the last [`Spool::peek`] returned events from.
    peeked: u64,
    /// Whether new events must come here (to stay behind the ones already here).
    pub(crate) active: bool,
    /// Where the bytes still waiting are reported (the own spool's only).
    depth: Option<Arc<Gauge>>,
}

fn line(event: &pb::Event) -> String {
    let mut text = STANDARD.encode(event.encode_to_vec());
    text.push('\n');
    text
}

impl Spool {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        // Spooled events name people and addresses: owner-only, whatever the umask.
        if let Some(dir) = path.parent() {
            tessera_config::private::create_dir(dir)?;
        }
        let file = tessera_config::private::file_options()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        Ok(Spool {
            path: path.to_owned(),
            file,
            delivered: 0,
            peeked: 0,
            active: false,
            depth: None,
        })
    }

    /// Reports the bytes waiting for delivery in `depth` from now on.
    pub(crate) fn report_depth(&mut self, depth: Arc<Gauge>) {
        self.depth = Some(depth);
        self.report();
    }

    fn report(&self) {
        if let Some(depth) = &self.depth {
            let length = self.file.metadata().map(|m| m.len()).unwrap_or(0);
            depth.set(length.saturating_sub(self.delivered));
        }
    }

    /// Appends events at the back.
    pub(crate) fn append(&mut self, events: &[pb::Event]) -> std::io::Result<()> {
        let text: String = events.iter().map(line).collect();
        let written = self.file.write_all(text.as_bytes());
        self.report();
        written
    }

    /// Puts events in front of everything not yet delivered (a failed batch, which is
    /// older than anything spooled after it).
    pub(crate) fn prepend(&mut self, events: &[pb::Event]) -> std::io::Result<()> {
        let mut pending = Vec::new();
        let mut reader = File::open(&self.path)?;
        reader.seek(SeekFrom::Start(self.delivered))?;
        reader.read_to_end(&mut pending)?;
        let temp = self.path.with_extension("spool.new");
        {
            let mut out = tessera_config::private::file_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)?;
            let front: String = events.iter().map(line).collect();
            out.write_all(front.as_bytes())?;
            out.write_all(&pending)?;
            out.sync_all()?;
        }
        std::fs::rename(&temp, &self.path)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.delivered = 0;
        self.peeked = 0;
        self.report();
        Ok(())
    }

    /// Up to `n` undelivered events, oldest first.
    pub(crate) fn peek(&mut self, n: usize) -> std::io::Result<Vec<pb::Event>> {
        let mut reader = BufReader::new(File::open(&self.path)?);
        reader.seek(SeekFrom::Start(self.delivered))?;
        let mut events = Vec::new();
        let mut consumed = 0u64;
        let mut text = String::new();
        while events.len() < n {
            text.clear();
            let read = reader.read_line(&mut text)?;
            // Only whole lines count; a line still being appended is read next time.
            if read == 0 || !text.ends_with('\n') {
                break;
            }
            consumed += read as u64;
            if let Some(event) = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|bytes| pb::Event::decode(bytes.as_slice()).ok())
            {
                events.push(event);
            }
        }
        self.peeked = consumed;
        Ok(events)
    }

    /// Marks the events of the last [`Spool::peek`] delivered.
    pub(crate) fn consume(&mut self) {
        self.delivered += self.peeked;
        self.peeked = 0;
        self.report();
    }

    /// Whether everything in the file was delivered.
    pub(crate) fn is_drained(&self) -> bool {
        self.file
            .metadata()
            .map(|m| m.len() <= self.delivered)
            .unwrap_or(false)
    }

    /// Empties the file.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.delivered = 0;
        self.peeked = 0;
        self.report();
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_spool_holding_personal_data_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("spool/login.spool");
        let mut spool = Spool::open(&path).expect("spool");
        spool
            .append(&[pb::Event {
                user_name: "alice".into(),
                ..Default::default()
            }])
            .expect("append");
        spool.prepend(&[pb::Event::default()]).expect("prepend");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "also after a rewrite");
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }
}
