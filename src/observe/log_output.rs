//! Where the log lines go: standard output, written so that a line the
//! output refuses (a full disk, a closed pipe) is dropped and counted in
//! `herald_log_lines_dropped_total`, never an error in the request that
//! logged it. The formatter's own fallback, a note on standard error,
//! panics when standard error is on the same full disk, and a panic in a
//! request closes its connection with no answer at all.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

use super::prometheus;

/// Hands the log formatter one [`Line`] per log line, onto standard
/// output.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOutput;

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = Line<io::Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        Line::new(io::stdout())
    }
}

/// One log line on its way to `out`: the first write `out` refuses drops
/// the rest of the line (a line cut short is worth less than none),
/// counted once. It never answers an error.
#[derive(Debug)]
pub struct Line<W: Write> {
    out: W,
    dropped: bool,
}

impl<W: Write> Line<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            dropped: false,
        }
    }

    fn drop_line(&mut self) {
        if !self.dropped {
            self.dropped = true;
            prometheus::log_line_dropped();
        }
    }
}

impl<W: Write> Write for Line<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.dropped && self.out.write_all(buf).is_err() {
            self.drop_line();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.dropped && self.out.flush().is_err() {
            self.drop_line();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that takes `room` bytes, then refuses every write as a
    /// full disk does.
    struct Disk {
        written: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room - self.written.len());
            if n == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn dropped_so_far() -> u64 {
        let text = prometheus::handle().render();
        text.lines()
            .find_map(|l| l.strip_prefix("herald_log_lines_dropped_total "))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    #[test]
    fn a_line_the_disk_refuses_is_dropped_and_counted_once() {
        let before = dropped_so_far();
        let mut line = Line::new(Disk {
            written: Vec::new(),
            room: 10,
        });
        assert_eq!(line.write(b"fits\n").unwrap(), 5);
        // Half of this fits: the rest of the line is dropped, not an error.
        line.write_all(b"does not fit\n").unwrap();
        line.write_all(b" and nor does this\n").unwrap();
        line.flush().unwrap();
        assert!(line.dropped);
        assert_eq!(line.out.written, b"fits\ndoes ");
        // Other tests may drop lines of their own meanwhile: at least one.
        assert!(dropped_so_far() > before);
    }

    #[test]
    fn a_line_that_fits_is_written_whole_and_not_counted() {
        let mut line = Line::new(Disk {
            written: Vec::new(),
            room: 100,
        });
        line.write_all(b"a whole line\n").unwrap();
        line.flush().unwrap();
        assert!(!line.dropped);
        assert_eq!(line.out.written, b"a whole line\n");
    }
}
