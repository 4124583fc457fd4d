//! Where a foreachBatch plugin's emits go: to the host in a Wasm instance, into a list in a
//! native test.

use std::fmt;

use super::emit_batch::EmitBatch;
use crate::batch::Batch;
use crate::output::BatchError;

/// One emit, as a recording [`Emitter`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// The output's name (a `[[sink.output]]` of the job).
    pub output: String,
    /// The batch emitted to it.
    pub batch: Batch,
}

/// The plugin's handle on the job's outputs during one `write_batch` call.
///
/// In a Wasm instance every [`emit`](Self::emit) goes to the host, which holds it until the call
/// returns `Ok` and commits it exactly once per batch id. Natively (unit tests),
/// [`Emitter::recording`] keeps the emits in a list to assert on, so the plugin's logic is tested
/// with `cargo test`, without Wasm or a host.
pub struct Emitter {
    target: Target,
}

/// The host's `emit`: sends one batch to the output of that name.
type HostEmit = Box<dyn FnMut(&str, Batch) -> Result<(), String>>;

enum Target {
    /// A native test: the emits, and the outputs a job would declare (`None`: any).
    Record { emitted: Vec<Emitted>, declared: Option<Vec<String>> },
    /// A Wasm instance: the host's `emit`.
    Host(HostEmit),
}

impl Emitter {
    /// An emitter that records every emit, to any output name: for native tests.
    pub fn recording() -> Emitter {
        Emitter { target: Target::Record { emitted: Vec::new(), declared: None } }
    }

    /// An emitter that records emits to the outputs in `declared` and refuses others with the
    /// host's message: for testing a plugin's handling of a refused emit.
    pub fn declaring(declared: &[&str]) -> Emitter {
        let declared = Some(declared.iter().map(|s| s.to_string()).collect());
        Emitter { target: Target::Record { emitted: Vec::new(), declared } }
    }

    /// An emitter that sends every emit to `f` (the glue passes the host's import).
    pub(crate) fn to_host(f: impl FnMut(&str, Batch) -> Result<(), String> + 'static) -> Emitter {
        Emitter { target: Target::Host(Box::new(f)) }
    }

    /// Writes `batch` to the output named `output`: a finished [`EmitBatch`] or a [`Batch`].
    /// Nothing is visible before the host commits the whole batch. Fails when the batch is
    /// malformed (the message names the output and the column), when the job declares no output
    /// of this name, or when the output refuses it (the message says why); the host fails the
    /// batch after a refused emit even if the plugin goes on.
    pub fn emit(&mut self, output: &str, batch: impl Into<EmitBatch>) -> Result<(), BatchError> {
        let batch = batch.into().finish().map_err(|e| BatchError::new(format!("emit to {output:?}: {}", e.message)))?;
        match &mut self.target {
            Target::Host(f) => f(output, batch).map_err(BatchError::new),
            Target::Record { emitted, declared } => {
                if let Some(declared) = declared {
                    if !declared.iter().any(|d| d == output) {
                        let list = declared.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
                        return Err(BatchError::new(format!(
                            "emit to {output:?}: the job declares no such output (declared: {list}); \
                             add a [[sink.output]] with name = {output:?}"
                        )));
                    }
                }
                emitted.push(Emitted { output: output.to_string(), batch });
                Ok(())
            }
        }
    }

    /// The emits recorded so far, in order (always empty for the host's emitter).
    pub fn emitted(&self) -> &[Emitted] {
        match &self.target {
            Target::Record { emitted, .. } => emitted,
            Target::Host(_) => &[],
        }
    }

    /// The batches recorded for `output`, in emit order.
    pub fn batches(&self, output: &str) -> Vec<&Batch> {
        self.emitted().iter().filter(|e| e.output == output).map(|e| &e.batch).collect()
    }

    /// The recorded emits, taken out of the emitter.
    pub fn into_emitted(self) -> Vec<Emitted> {
        match self.target {
            Target::Record { emitted, .. } => emitted,
            Target::Host(_) => Vec::new(),
        }
    }
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Record { emitted, declared } => {
                f.debug_struct("Emitter").field("emitted", emitted).field("declared", declared).finish()
            }
            Target::Host(_) => f.write_str("Emitter(host)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Column;
    use crate::builder::I64Builder;

    fn one() -> Batch {
        Batch::new(1, vec![Column::new("n", I64Builder::from_values(vec![1]))]).unwrap()
    }

    #[test]
    fn a_recording_emitter_keeps_emits_in_order() {
        let mut out = Emitter::recording();
        out.emit("a", one()).unwrap();
        out.emit("b", EmitBatch::new().push_i64("n", [Some(2), None])).unwrap();
        out.emit("a", one()).unwrap();
        assert_eq!(out.emitted().iter().map(|e| e.output.as_str()).collect::<Vec<_>>(), ["a", "b", "a"]);
        assert_eq!(out.batches("a"), vec![&one(), &one()]);
        assert_eq!(out.batches("b")[0].i64s("n").unwrap().iter().collect::<Vec<_>>(), vec![Some(2), None]);
        assert_eq!(out.into_emitted().len(), 3);
    }

    #[test]
    fn refused_and_malformed_emits_name_the_output() {
        let mut out = Emitter::declaring(&["big", "small"]);
        let e = out.emit("nowhere", one()).unwrap_err();
        assert_eq!(
            e.message,
            "emit to \"nowhere\": the job declares no such output (declared: \"big\", \"small\"); \
             add a [[sink.output]] with name = \"nowhere\""
        );
        let e = out.emit("big", EmitBatch::new().push_i64("n", [Some(1)]).push_i64("m", [])).unwrap_err();
        assert_eq!(e.message, "emit to \"big\": column `m` has 0 values for 1 rows");
        assert!(out.emitted().is_empty());
    }

    #[test]
    fn the_host_emitter_passes_batches_and_errors_through() {
        let mut out =
            Emitter::to_host(|name, b| if name == "x" { Ok(()) } else { Err(format!("{} rows", b.num_rows())) });
        out.emit("x", one()).unwrap();
        assert_eq!(out.emit("y", one()).unwrap_err().message, "1 rows");
        assert!(out.emitted().is_empty());
        assert_eq!(format!("{out:?}"), "Emitter(host)");
    }
}
