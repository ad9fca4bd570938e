//! The spool: a local file of events waiting for the audit service, one base64 protobuf
//! per line, sent from the front. A cursor (in memory) marks what was already
//! delivered; the file is emptied once everything in it was.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::Message as _;
use tessera_proto::audit::v1 as pb;

pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    /// Lines already delivered.
    delivered: usize,
    /// Whether new events must come here (to stay behind the ones already here).
    pub(crate) active: bool,
}

fn line(event: &pb::Event) -> String {
    let mut text = STANDARD.encode(event.encode_to_vec());
    text.push('\n');
    text
}

impl Spool {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        Ok(Spool {
            path: path.to_owned(),
            file,
            delivered: 0,
            active: false,
        })
    }

    /// Appends events at the back.
    pub(crate) fn append(&mut self, events: &[pb::Event]) -> std::io::Result<()> {
        let text: String = events.iter().map(line).collect();
        self.file.write_all(text.as_bytes())
    }

    /// Puts events in front of everything not yet delivered (a failed batch, which is
    /// older than anything spooled after it).
    pub(crate) fn prepend(&mut self, events: &[pb::Event]) -> std::io::Result<()> {
        let pending = self.lines()?.split_off(self.delivered);
        let temp = self.path.with_extension("spool.new");
        {
            let mut out = File::create(&temp)?;
            let text: String = events
                .iter()
                .map(line)
                .chain(pending.into_iter().map(|l| l + "\n"))
                .collect();
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
        }
        std::fs::rename(&temp, &self.path)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.delivered = 0;
        Ok(())
    }

    fn lines(&mut self) -> std::io::Result<Vec<String>> {
        let mut reader = BufReader::new(File::open(&self.path)?);
        reader.seek(SeekFrom::Start(0))?;
        reader.lines().collect()
    }

    /// Up to `n` undelivered events, oldest first.
    pub(crate) fn peek(&mut self, n: usize) -> std::io::Result<Vec<pb::Event>> {
        Ok(self
            .lines()?
            .into_iter()
            .skip(self.delivered)
            .take(n)
            .filter_map(|l| STANDARD.decode(l.trim()).ok())
            .filter_map(|bytes| pb::Event::decode(bytes.as_slice()).ok())
            .collect())
    }

    /// Marks `n` more events delivered.
    pub(crate) fn consume(&mut self, n: usize) {
        self.delivered += n;
    }

    /// Whether everything in the file was delivered.
    pub(crate) fn is_drained(&mut self) -> bool {
        self.lines()
            .map(|l| l.len() <= self.delivered)
            .unwrap_or(false)
    }

    /// Empties the file.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.delivered = 0;
        Ok(())
    }
}
