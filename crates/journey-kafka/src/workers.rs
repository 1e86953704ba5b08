//! The instance's stream threads (`workers`): starting them, reaching them from the rest of the
//! service, and ending them together.
//!
//! - Each worker runs [`stream_thread::run`] on a thread of its own (`journeyd-w<i>`), with its
//!   own control channel.
//! - A reload goes to every worker and is reported applied only when every worker
//!   acknowledged it ([`WorkerControls::reload`]). A worker acknowledges between two records,
//!   or between two Kafka sessions (the set is then used by its next session). A worker that
//!   does not acknowledge has ended, which ends the service: the reload is then reported as
//!   failed (`journeyd_reloads_total{result="error"}`), the workers that applied it keep it
//!   until they stop.
//! - An inspection asks every worker (the customer's partition is not computed here: the
//!   producers' partitioner is not known) and answers with the one that holds the customer.
//! - The first worker to end ends the others: a fatal error of one worker stops the service
//!   with that error, after every other worker committed, checkpointed and closed its
//!   consumer like at a requested shutdown.

use crate::stream_thread::{self, Control, StreamThreadSetup};
use crate::task::panic_message;
use crate::RuntimeError;
use journey_engine::Catalog;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an inspection waits for the workers (they answer between two records; a long
/// restore step may delay them).
const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The running stream threads.
pub struct Workers {
    exits: tokio::sync::mpsc::UnboundedReceiver<(usize, Result<(), RuntimeError>)>,
    running: usize,
    stop: CancellationToken,
}

/// The control channels of every worker, shared by the reload loop and the inspect endpoint.
#[derive(Clone)]
pub struct WorkerControls {
    senders: Arc<Vec<mpsc::Sender<Control>>>,
}

/// A reload that not every worker applied (the service is stopping).
#[derive(Debug, thiserror::Error)]
#[error("journeys applied by {applied} of {workers} workers (a worker has stopped)")]
pub struct ReloadIncomplete {
    pub applied: usize,
    pub workers: usize,
}

impl Workers {
    /// Starts `n` stream threads; `setup(i, control)` builds worker `i`'s setup around its
    /// control channel. `stop` ends them all.
    pub fn spawn(
        n: usize,
        stop: CancellationToken,
        mut setup: impl FnMut(usize, mpsc::Receiver<Control>) -> StreamThreadSetup,
    ) -> Result<(Workers, WorkerControls), RuntimeError> {
        let (exit_tx, exits) = tokio::sync::mpsc::unbounded_channel();
        let mut senders = Vec::with_capacity(n);
        let mut workers = Workers {
            exits,
            running: 0,
            stop,
        };
        for i in 0..n {
            let (control, receiver) = mpsc::channel();
            let worker_setup = setup(i, receiver);
            let exit = exit_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("journeyd-w{i}"))
                .spawn(move || {
                    let result =
                        catch_unwind(AssertUnwindSafe(|| stream_thread::run(worker_setup)))
                            .unwrap_or_else(|panic| {
                                Err(RuntimeError::Worker(format!(
                                    "worker {i} panicked: {}",
                                    panic_message(&panic)
                                )))
                            });
                    let _ = exit.send((i, result));
                });
            match spawned {
                Ok(_) => {
                    workers.running += 1;
                    senders.push(control);
                }
                Err(e) => {
                    // The threads already started stop on their own, and the start fails.
                    workers.stop.cancel();
                    return Err(RuntimeError::Worker(format!("starting worker {i}: {e}")));
                }
            }
        }
        Ok((
            workers,
            WorkerControls {
                senders: Arc::new(senders),
            },
        ))
    }

    /// The next worker to end, with its result (`None` once every worker ended).
    pub async fn next_exit(&mut self) -> Option<(usize, Result<(), RuntimeError>)> {
        if self.running == 0 {
            return None;
        }
        let exit = self.exits.recv().await;
        if exit.is_some() {
            self.running -= 1;
        }
        exit
    }

    /// Stops every worker and waits for them; the result is the first error among `first`
    /// (a worker that already ended) and the others' results, in the order they ended.
    pub async fn stop_all(
        mut self,
        first: Option<(usize, Result<(), RuntimeError>)>,
    ) -> Result<(), RuntimeError> {
        self.stop.cancel();
        let mut result = Ok(());
        let mut record = |(i, r): (usize, Result<(), RuntimeError>)| {
            if let Err(e) = r {
                tracing::error!(worker = i, error = %e, "worker stopped on error");
                if result.is_ok() {
                    result = Err(e);
                }
            }
        };
        if let Some(exit) = first {
            record(exit);
        }
        while let Some(exit) = self.next_exit().await {
            record(exit);
        }
        result
    }
}

impl WorkerControls {
    /// The number of workers.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether there are no workers (never, once started).
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Hands `catalog` to every worker and waits until each applied it.
    pub async fn reload(&self, catalog: Arc<Catalog>) -> Result<(), ReloadIncomplete> {
        let mut acks = Vec::with_capacity(self.senders.len());
        for sender in self.senders.iter() {
            let (applied, ack) = tokio::sync::oneshot::channel();
            if sender
                .send(Control::Reload(Arc::clone(&catalog), applied))
                .is_ok()
            {
                acks.push(ack);
            }
        }
        let mut applied = 0;
        for ack in acks {
            if ack.await.is_ok() {
                applied += 1;
            }
        }
        if applied == self.senders.len() {
            Ok(())
        } else {
            Err(ReloadIncomplete {
                applied,
                workers: self.senders.len(),
            })
        }
    }

    /// Asks every worker for `customer_id`; the answer of the one that holds it, as soon as it
    /// answers (a slow worker does not hold back another's answer).
    pub async fn inspect(&self, customer_id: String) -> Option<serde_json::Value> {
        let (found, mut answers) = tokio::sync::mpsc::unbounded_channel();
        let mut asked = 0;
        for sender in self.senders.iter() {
            let (reply, answer) = tokio::sync::oneshot::channel();
            if sender
                .send(Control::Inspect(customer_id.clone(), reply))
                .is_ok()
            {
                asked += 1;
                let found = found.clone();
                tokio::spawn(async move {
                    let _ = found.send(answer.await.ok().flatten());
                });
            }
        }
        drop(found);
        let first_found = async {
            for _ in 0..asked {
                match answers.recv().await {
                    Some(Some(view)) => return Some(view),
                    Some(None) => {}
                    None => break,
                }
            }
            None
        };
        tokio::time::timeout(INSPECT_TIMEOUT, first_found)
            .await
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_spec::Config;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::new(&Config::example(), Vec::new()))
    }

    fn channels(n: usize) -> (WorkerControls, Vec<mpsc::Receiver<Control>>) {
        let (senders, receivers) = (0..n).map(|_| mpsc::channel()).unzip();
        (
            WorkerControls {
                senders: Arc::new(senders),
            },
            receivers,
        )
    }

    /// Serves one request like a stream thread: acknowledges a reload, answers an inspection
    /// with `answer`.
    fn serve_one(control: mpsc::Receiver<Control>, answer: Option<serde_json::Value>) {
        std::thread::spawn(move || match control.recv() {
            Ok(Control::Reload(_, applied)) => {
                let _ = applied.send(());
            }
            Ok(Control::Inspect(_, reply)) => {
                let _ = reply.send(answer);
            }
            Err(_) => {}
        });
    }

    #[tokio::test]
    async fn a_reload_is_done_once_every_worker_applied_it() {
        let (controls, receivers) = channels(3);
        for r in receivers {
            serve_one(r, None);
        }
        controls.reload(catalog()).await.unwrap();
    }

    #[tokio::test]
    async fn a_reload_a_stopped_worker_cannot_apply_is_reported_incomplete() {
        let (controls, mut receivers) = channels(2);
        drop(receivers.pop());
        serve_one(receivers.pop().unwrap(), None);
        let err = controls.reload(catalog()).await.unwrap_err();
        assert_eq!((err.applied, err.workers), (1, 2));
        assert_eq!(
            err.to_string(),
            "journeys applied by 1 of 2 workers (a worker has stopped)"
        );
    }

    #[tokio::test]
    async fn inspection_answers_with_the_worker_that_holds_the_customer_without_waiting_for_the_others(
    ) {
        let (controls, mut receivers) = channels(2);
        serve_one(
            receivers.pop().unwrap(),
            Some(serde_json::json!({"id": "c-1"})),
        );
        // Worker 0 answers only after the inspection returned: a wait for it would end in the
        // timeout, without an answer.
        let slow = receivers.pop().unwrap();
        let (release, released) = mpsc::channel::<()>();
        let held = std::thread::spawn(move || {
            let request = slow.recv().unwrap();
            released.recv().unwrap();
            if let Control::Inspect(_, reply) = request {
                let _ = reply.send(None);
            }
        });
        let found = controls.inspect("c-1".into()).await;
        release.send(()).unwrap();
        held.join().unwrap();
        assert_eq!(found, Some(serde_json::json!({"id": "c-1"})));
        // Nobody holds it: no answer.
        let (nobody, receivers) = channels(2);
        for r in receivers {
            serve_one(r, None);
        }
        assert_eq!(nobody.inspect("c-2".into()).await, None);
    }
}
