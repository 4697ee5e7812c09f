//! The gate a continuation's new text passes before the client sees it: it drops the
//! whitespace the client already has, and it refuses a continuation that starts the answer
//! over instead of continuing it (two overlapping pieces of one answer).

/// A target that ignores the prefill restarts the answer: its text begins as the relayed
/// text began. Only a relayed text with at least this many characters (leading whitespace
/// aside) is compared: shorter beginnings repeat by chance.
pub(crate) const MIN_RESTART_PROBE: usize = 8;
/// How many characters of the relayed text's beginning are compared.
pub(crate) const RESTART_PROBE: usize = 24;

/// The continuation repeated the beginning of the answer instead of continuing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restarted;

/// One continuation's text on its way to the client.
#[derive(Debug, Clone)]
pub(crate) struct TextGate {
    /// Whitespace the client already has that the prefill could not carry (Anthropic
    /// refuses a prefill ending in whitespace); dropped from the continuation's beginning
    /// where it repeats it.
    overlap: Vec<char>,
    /// The beginning of the relayed text a restart would repeat; empty: no check.
    probe: String,
    /// Text held until the restart check can decide.
    held: String,
    decided: bool,
    /// Some text went to the client.
    passed: bool,
}

impl TextGate {
    /// A gate for a continuation of `relayed` (the text the client has) whose prefill lost
    /// the trailing whitespace `overlap`.
    pub(crate) fn new(relayed: &str, overlap: &str) -> Self {
        let start = relayed.trim_start();
        let probe: String = if start.chars().count() >= MIN_RESTART_PROBE {
            start.chars().take(RESTART_PROBE).collect()
        } else {
            String::new()
        };
        TextGate {
            overlap: overlap.chars().collect(),
            decided: probe.is_empty(),
            probe,
            held: String::new(),
            passed: false,
        }
    }

    /// Whether text has passed the gate (the client has some of this continuation).
    pub(crate) fn has_passed(&self) -> bool {
        self.passed
    }

    fn release(&mut self, text: String) -> String {
        self.passed |= !text.is_empty();
        text
    }

    /// Takes the next piece of the continuation's text; returns what may go to the client
    /// now. Text is held only while it could still be the relayed text's beginning again
    /// (at most [`RESTART_PROBE`] characters); once it departs from it, it flows.
    pub(crate) fn push(&mut self, text: &str) -> Result<String, Restarted> {
        let mut kept = String::with_capacity(text.len());
        for c in text.chars() {
            // The overlap is cleared at the first character that does not repeat it.
            if self.overlap.first() == Some(&c) {
                self.overlap.remove(0);
                continue;
            }
            self.overlap.clear();
            kept.push(c);
        }
        if self.decided {
            return Ok(self.release(kept));
        }
        self.held.push_str(&kept);
        let start = self.held.trim_start();
        if start.starts_with(self.probe.as_str()) {
            return Err(Restarted);
        }
        if self.probe.starts_with(start) {
            // Still the relayed text's beginning (or only whitespace so far): hold it.
            return Ok(String::new());
        }
        self.decided = true;
        let held = std::mem::take(&mut self.held);
        Ok(self.release(held))
    }

    /// The continuation ended: what is still held may go to the client, unless it is a
    /// restart (a held text of at least [`MIN_RESTART_PROBE`] characters that the relayed
    /// text begins with).
    pub(crate) fn finish(&mut self) -> Result<String, Restarted> {
        if self.decided {
            return Ok(String::new());
        }
        self.decided = true;
        let start = self.held.trim_start();
        if start.chars().count() >= MIN_RESTART_PROBE && self.probe.starts_with(start) {
            return Err(Restarted);
        }
        let held = std::mem::take(&mut self.held);
        Ok(self.release(held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(relayed: &str, overlap: &str, pieces: &[&str]) -> Result<String, Restarted> {
        let mut g = TextGate::new(relayed, overlap);
        let mut out = String::new();
        for p in pieces {
            out.push_str(&g.push(p)?);
        }
        out.push_str(&g.finish()?);
        Ok(out)
    }

    #[test]
    fn short_relayed_text_passes_at_once() {
        let mut g = TextGate::new("Hi", "");
        assert_eq!(g.push(" there").unwrap(), " there");
        assert!(g.has_passed());
    }

    #[test]
    fn text_is_held_only_while_it_could_be_a_restart() {
        let relayed = "The quick brown fox jumps over the lazy dog";
        let mut g = TextGate::new(relayed, "");
        assert_eq!(g.push(" ").unwrap(), "");
        assert_eq!(g.push("The q").unwrap(), "");
        assert!(!g.has_passed());
        assert_eq!(g.push("ueen said").unwrap(), " The queen said");
        assert!(g.has_passed());
        let mut g = TextGate::new(relayed, "");
        assert_eq!(g.push(" and").unwrap(), " and");
        assert_eq!(g.push("!").unwrap(), "!");
        assert_eq!(g.finish().unwrap(), "");
    }

    #[test]
    fn a_restart_is_refused_whole_or_short() {
        let relayed = "The quick brown fox jumps over the lazy dog";
        assert_eq!(
            run(relayed, "", &["The quick brown ", "fox jumps over it"]),
            Err(Restarted)
        );
        assert_eq!(run(relayed, "", &["  The quick"]), Err(Restarted));
        // A short continuation that does not repeat the beginning is kept at the end.
        assert_eq!(run(relayed, "", &["."]).unwrap(), ".");
        assert_eq!(run(relayed, "", &["The"]).unwrap(), "The");
    }

    #[test]
    fn the_whitespace_the_client_has_is_not_repeated() {
        assert_eq!(run("Hello world ", " ", &[" again"]).unwrap(), "again");
        assert_eq!(run("Hello\n\n", "\n\n", &["\n", "\nNext"]).unwrap(), "Next");
        assert_eq!(run("Hello\n\n", "\n\n", &["\nNext"]).unwrap(), "Next");
        assert_eq!(run("Hello ", " ", &["again"]).unwrap(), "again");
        // Only whitespace that repeats the lost tail is dropped.
        assert_eq!(run("Hello\n", "\n", &[" x"]).unwrap(), " x");
    }
}
