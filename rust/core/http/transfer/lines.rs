//! Splits a byte stream into lines the way the WHATWG HTML standard's event-stream
//! grammar does: a line ends at CRLF, LF or CR, so servers on any platform work. A CR at
//! the end of one chunk followed by an LF at the start of the next is one line end.

/// Why a line could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTooLong {
    /// The limit that was passed, in bytes.
    pub max: usize,
}

/// Buffers the current unfinished line, never more than `max` bytes of it.
#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
    /// The previous chunk ended with CR: an LF starting this one belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    /// A splitter that refuses lines longer than `max` bytes (without their line end).
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            pending: Vec::new(),
            max,
            after_cr: false,
        }
    }

    /// Feeds `chunk` and calls `line` for every line it completes, without its line end.
    /// Stops at the first line over the limit; the splitter is unusable afterwards.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        mut line: impl FnMut(&[u8]),
    ) -> Result<(), LineTooLong> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.append(&chunk[..end])?;
            line(&self.pending);
            self.pending.clear();
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.append(chunk)
    }

    /// The unfinished last line, if any bytes of it arrived (for a stream that ended
    /// without a final line end).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.pending.len() + bytes.len() > self.max {
            self.pending = Vec::new();
            return Err(LineTooLong { max: self.max });
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Result<Vec<String>, LineTooLong> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            s.push(chunk, |l| out.push(String::from_utf8_lossy(l).into_owned()))?;
        }
        out.extend(s.finish().map(|l| String::from_utf8_lossy(&l).into_owned()));
        Ok(out)
    }

    #[test]
    fn every_line_end_counts_once() {
        let got = split(&[b"a\nb\r\nc\rd\n\ne"], 100).unwrap();
        assert_eq!(got, ["a", "b", "c", "d", "", "e"]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let got = split(&[b"a\r", b"\nb\r", b"c\r", b"", b"\n"], 100).unwrap();
        assert_eq!(got, ["a", "b", "c"]);
        // A lone CR at the end of a chunk, then another CR: two line ends.
        let got = split(&[b"a\r", b"\rb\n"], 100).unwrap();
        assert_eq!(got, ["a", "", "b"]);
    }

    #[test]
    fn a_line_over_the_limit_is_refused_even_across_chunks() {
        assert_eq!(split(&[b"1234\n12345\n"], 5).unwrap(), ["1234", "12345"]);
        assert_eq!(
            split(&[b"123", b"456\n"], 5).unwrap_err(),
            LineTooLong { max: 5 }
        );
        assert!(
            split(&[b"123456"], 5).is_err(),
            "an unfinished line counts too"
        );
    }
}
