//! The instance's readiness ([`Health`]), read by `/readyz` and the `journeyd_ready` gauge, and
//! updated by every stream thread through its own [`WorkerHealth`] handle.
//!
//! An instance runs `workers` stream threads, each with its own consumer group member; the
//! instance is ready only when every one of them is: each has joined the group and none has an
//! assigned partition still restoring. `/readyz` answers 503 with the first reason it is not
//! ready (every restoring worker's partitions when that is the reason), naming the worker when
//! there are several, so `curl` tells an operator what the instance is waiting for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// How far a partition's restore got: items (checkpoint customers and changelog records)
/// applied, of `target` (0 while the target is not known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoreProgress {
    pub done: u64,
    pub target: u64,
}

/// What readiness depends on, kept together under one lock so a reader sees a consistent view.
#[derive(Debug)]
struct HealthState {
    running: bool,
    /// Whether the service was ever running, to tell "starting" from "stopping".
    started: bool,
    /// The brokers as seen at start-up (topic setup), before any stream thread runs.
    broker_reachable: bool,
    workers: Vec<WorkerState>,
}

/// One stream thread's part of readiness.
#[derive(Debug)]
struct WorkerState {
    broker_reachable: bool,
    /// Why the Kafka session (group consumer + producer) is being rebuilt, until a new one
    /// started.
    session_lost: Option<String>,
    /// A transactional call failing and being retried: processing waits for it.
    transaction_stalled: Option<String>,
    group_joined: bool,
    /// Partitions assigned to this worker's consumer.
    assigned: BTreeSet<i32>,
    /// Assigned partitions not yet restored, with their progress.
    restoring: BTreeMap<i32, RestoreProgress>,
}

impl WorkerState {
    fn new() -> WorkerState {
        WorkerState {
            broker_reachable: true,
            session_lost: None,
            transaction_stalled: None,
            group_joined: false,
            assigned: BTreeSet::new(),
            restoring: BTreeMap::new(),
        }
    }

    /// The first reason other than restoring that this worker is not ready.
    fn blocked(&self) -> Option<String> {
        if !self.broker_reachable {
            return Some("broker unreachable".to_string());
        }
        if let Some(reason) = &self.session_lost {
            return Some(format!("restarting the kafka session: {reason}"));
        }
        if let Some(why) = &self.transaction_stalled {
            return Some(format!("transaction stalled: {why}"));
        }
        if !self.group_joined {
            return Some("joining consumer group".to_string());
        }
        None
    }

    fn restoring_reason(&self) -> Option<String> {
        if self.restoring.is_empty() {
            return None;
        }
        let list: Vec<String> = self.restoring.keys().map(i32::to_string).collect();
        let progress: Vec<String> = self
            .restoring
            .iter()
            .map(|(p, r)| match r.target {
                0 => format!("{p}: starting"),
                t => format!("{p}: {}/{t}", r.done),
            })
            .collect();
        Some(format!(
            "restoring partitions [{}] ({})",
            list.join(", "),
            progress.join(", ")
        ))
    }
}

/// The instance's readiness, updated by the runtime and read by `/readyz` (and the
/// `journeyd_ready` gauge).
///
/// Ready means: the service is running, the brokers are reachable, and every worker joined
/// the consumer group (an assignment, possibly empty, was received) and has no assigned
/// partition still restoring from its changelog.
#[derive(Debug)]
pub struct Health {
    state: Mutex<HealthState>,
}

impl Health {
    /// One worker, not running, brokers assumed reachable until told otherwise, group not
    /// joined.
    pub fn new() -> Arc<Health> {
        Health::with_workers(1)
    }

    /// Like [`Health::new`] with `workers` stream threads (at least one).
    pub fn with_workers(workers: usize) -> Arc<Health> {
        Arc::new(Health {
            state: Mutex::new(HealthState {
                running: false,
                started: false,
                broker_reachable: true,
                workers: (0..workers.max(1)).map(|_| WorkerState::new()).collect(),
            }),
        })
    }

    /// Sets the number of stream threads (at least one); their state starts afresh.
    pub fn set_workers(&self, workers: usize) {
        self.state().workers = (0..workers.max(1)).map(|_| WorkerState::new()).collect();
    }

    /// The number of stream threads readiness waits for.
    pub fn workers(&self) -> usize {
        self.state().workers.len()
    }

    /// The handle through which stream thread `worker` reports its part.
    ///
    /// # Panics
    /// When `worker` is not below [`Health::workers`].
    pub fn worker(self: &Arc<Self>, worker: usize) -> WorkerHealth {
        assert!(
            worker < self.workers(),
            "worker {worker} of {}",
            self.workers()
        );
        WorkerHealth {
            health: Arc::clone(self),
            worker,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        // A panic while holding this lock cannot leave the plain flags inconsistent, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_worker<R>(&self, worker: usize, f: impl FnOnce(&mut WorkerState) -> R) -> R {
        f(&mut self.state().workers[worker])
    }

    /// Records whether the brokers answer, for the instance as a whole (start-up) and every
    /// worker.
    pub fn set_broker_reachable(&self, reachable: bool) {
        let mut s = self.state();
        s.broker_reachable = reachable;
        for w in &mut s.workers {
            w.broker_reachable = reachable;
        }
    }

    /// Marks the service as running (after start-up) or not (during shutdown).
    pub fn set_running(&self, running: bool) {
        let mut s = self.state();
        s.running = running;
        s.started |= running;
    }

    /// The partitions restoring, with their progress, of every worker.
    pub fn restoring(&self) -> Vec<(i32, RestoreProgress)> {
        let s = self.state();
        let mut all: Vec<(i32, RestoreProgress)> = s
            .workers
            .iter()
            .flat_map(|w| w.restoring.iter().map(|(p, r)| (*p, *r)))
            .collect();
        all.sort_by_key(|(p, _)| *p);
        all
    }

    /// The partitions assigned to each worker, by worker index.
    pub fn assignments(&self) -> Vec<Vec<i32>> {
        self.state()
            .workers
            .iter()
            .map(|w| w.assigned.iter().copied().collect())
            .collect()
    }

    /// `Ok` when ready, else the first reason it is not, as `/readyz` reports it. With several
    /// workers a reason names its worker (`worker 1: joining consumer group`); when partitions
    /// restoring are the reason, every restoring worker is listed, separated by `; `.
    pub fn readiness(&self) -> Result<(), String> {
        let s = self.state();
        if !s.running {
            return Err(if s.started {
                "shutting down"
            } else {
                "starting"
            }
            .to_string());
        }
        if !s.broker_reachable {
            return Err("broker unreachable".to_string());
        }
        let several = s.workers.len() > 1;
        let named = |i: usize, reason: String| {
            if several {
                format!("worker {i}: {reason}")
            } else {
                reason
            }
        };
        // The brokers' absence is named first, whichever worker saw it.
        if s.workers.iter().any(|w| !w.broker_reachable) {
            return Err("broker unreachable".to_string());
        }
        if let Some((i, reason)) = s
            .workers
            .iter()
            .enumerate()
            .find_map(|(i, w)| w.blocked().map(|r| (i, r)))
        {
            return Err(named(i, reason));
        }
        let restoring: Vec<String> = s
            .workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.restoring_reason().map(|r| named(i, r)))
            .collect();
        if !restoring.is_empty() {
            return Err(restoring.join("; "));
        }
        Ok(())
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// The body of a 200 `/readyz`: `ready`, and with several workers one line per worker
    /// with its partitions (`worker 1: partitions [1, 3]`).
    pub fn ready_body(&self) -> String {
        let assignments = self.assignments();
        let mut body = String::from("ready\n");
        if assignments.len() > 1 {
            for (i, partitions) in assignments.iter().enumerate() {
                let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
                body.push_str(&format!("worker {i}: partitions [{}]\n", list.join(", ")));
            }
        }
        body
    }
}

/// One stream thread's handle on the instance's [`Health`]: what it reports concerns its own
/// consumer, producer and partitions only.
#[derive(Debug, Clone)]
pub struct WorkerHealth {
    health: Arc<Health>,
    worker: usize,
}

impl WorkerHealth {
    /// The stream thread's index.
    pub fn index(&self) -> usize {
        self.worker
    }

    /// The whole instance's readiness.
    pub fn instance(&self) -> &Arc<Health> {
        &self.health
    }

    /// Records whether this worker's clients reach the brokers (false on "all brokers down",
    /// true once they answer).
    pub fn set_broker_reachable(&self, reachable: bool) {
        self.health
            .with_worker(self.worker, |w| w.broker_reachable = reachable);
    }

    /// Records that this worker's consumer joined the group (or left it, with `false`). An
    /// assignment, even an empty one, means the group was joined.
    pub fn set_group_joined(&self, joined: bool) {
        self.health
            .with_worker(self.worker, |w| w.group_joined = joined);
    }

    /// Partitions were assigned (possibly none): the group is joined, and each of them holds
    /// readiness back until [`WorkerHealth::partition_ready`]. Both change under one lock,
    /// called from the rebalance callback itself, so no reader can ever see the group joined
    /// with an assigned partition that is not marked as restoring.
    pub fn partitions_assigned(&self, partitions: &[i32]) {
        self.health.with_worker(self.worker, |w| {
            w.group_joined = true;
            for p in partitions {
                w.assigned.insert(*p);
                w.restoring.insert(*p, RestoreProgress::default());
            }
        });
    }

    /// A partition (back) to restoring, e.g. after an aborted transaction.
    pub fn partition_restoring(&self, partition: i32) {
        self.health.with_worker(self.worker, |w| {
            w.restoring.insert(partition, RestoreProgress::default());
        });
    }

    /// Progress of a partition's restore (ignored for a partition not restoring).
    pub fn restore_progress(&self, partition: i32, progress: RestoreProgress) {
        self.health.with_worker(self.worker, |w| {
            if let Some(slot) = w.restoring.get_mut(&partition) {
                *slot = progress;
            }
        });
    }

    /// This worker's partitions restoring, with their progress.
    pub fn restoring(&self) -> Vec<(i32, RestoreProgress)> {
        self.health.with_worker(self.worker, |w| {
            w.restoring.iter().map(|(p, r)| (*p, *r)).collect()
        })
    }

    /// A partition finished restoring and processes events.
    pub fn partition_ready(&self, partition: i32) {
        self.health.with_worker(self.worker, |w| {
            w.group_joined = true;
            w.restoring.remove(&partition);
        });
    }

    /// A partition was revoked: it no longer holds readiness back.
    pub fn partition_revoked(&self, partition: i32) {
        self.health.with_worker(self.worker, |w| {
            w.assigned.remove(&partition);
            w.restoring.remove(&partition);
        });
    }

    /// This worker's Kafka session failed and is being rebuilt: readiness reports `reason`
    /// until [`WorkerHealth::session_started`]; the old session's group membership and
    /// partitions are forgotten (the new session joins and restores them again).
    pub fn session_lost(&self, reason: &str) {
        self.health.with_worker(self.worker, |w| {
            w.session_lost = Some(reason.to_owned());
            w.transaction_stalled = None;
            w.group_joined = false;
            w.assigned.clear();
            w.restoring.clear();
        });
    }

    /// A new Kafka session started: it waits for its assignment ("joining consumer group").
    pub fn session_started(&self) {
        self.health.with_worker(self.worker, |w| {
            w.session_lost = None;
            w.transaction_stalled = None;
            w.group_joined = false;
        });
    }

    /// A transactional call keeps failing and is made again (`Some(why)`): processing waits,
    /// so the instance is not ready. `None` once a commit went through again or the failed
    /// transaction was recovered from (its partitions then restore, which readiness reports).
    pub fn set_transaction_stalled(&self, why: Option<&str>) {
        self.health.with_worker(self.worker, |w| {
            w.transaction_stalled = why.map(str::to_owned)
        });
    }

    /// Marks the service as running or not (see [`Health::set_running`]).
    pub fn set_running(&self, running: bool) {
        self.health.set_running(running);
    }

    /// Whether the whole instance is ready.
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// The whole instance's readiness (see [`Health::readiness`]).
    pub fn readiness(&self) -> Result<(), String> {
        self.health.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reports_the_first_reason() {
        let h = Health::new().worker(0);
        assert_eq!(h.readiness(), Err("starting".to_string()));
        h.set_running(true);
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[2, 0]);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [0, 2] (0: starting, 2: starting)".to_string())
        );
        h.restore_progress(
            2,
            RestoreProgress {
                done: 10,
                target: 40,
            },
        );
        h.set_broker_reachable(false);
        assert_eq!(h.readiness(), Err("broker unreachable".to_string()));
        h.set_broker_reachable(true);
        h.partition_ready(0);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [2] (2: 10/40)".to_string())
        );
        h.partition_revoked(2);
        assert!(h.is_ready());
        h.set_running(false);
        assert_eq!(h.readiness(), Err("shutting down".to_string()));
    }

    #[test]
    fn a_lost_session_is_not_ready_until_the_new_one_joined_and_restored() {
        let h = Health::new().worker(0);
        h.set_running(true);
        h.partitions_assigned(&[0, 1]);
        h.partition_ready(0);
        h.partition_ready(1);
        assert!(h.is_ready());
        h.session_lost("fatal consumer error: fenced");
        assert_eq!(
            h.readiness(),
            Err("restarting the kafka session: fatal consumer error: fenced".to_string())
        );
        // The broker's absence is named first.
        h.set_broker_reachable(false);
        assert_eq!(h.readiness(), Err("broker unreachable".to_string()));
        h.set_broker_reachable(true);
        h.session_started();
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[]);
        h.set_transaction_stalled(Some("commit retrying after: timed out"));
        assert_eq!(
            h.readiness(),
            Err("transaction stalled: commit retrying after: timed out".to_string())
        );
        h.set_transaction_stalled(None);
        assert!(h.is_ready());
        h.session_lost("again");
        h.session_started();
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[1]);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [1] (1: starting)".to_string())
        );
        h.partition_ready(1);
        assert!(h.is_ready());
    }

    #[test]
    fn an_empty_assignment_is_ready_once_the_group_is_joined() {
        let h = Health::new().worker(0);
        h.set_running(true);
        assert!(!h.is_ready());
        h.partitions_assigned(&[]);
        assert!(h.is_ready());
    }

    /// The race of a readiness probe between "assigned" and "restoring": the assignment itself
    /// marks the partitions as not restored, so there is no moment in between to observe.
    #[test]
    fn an_assignment_is_never_ready_before_its_partitions_are_restored() {
        let h = Health::new().worker(0);
        h.set_running(true);
        h.partitions_assigned(&[]);
        assert!(h.is_ready());
        // A second assignment while ready: unready at once, in the same call.
        h.partitions_assigned(&[3]);
        assert!(!h.is_ready());
        h.restore_progress(3, RestoreProgress { done: 5, target: 5 });
        assert!(
            !h.is_ready(),
            "progress alone never makes a partition ready"
        );
        h.partition_ready(3);
        assert!(h.is_ready());
        // Restoring again after an abort.
        h.partition_restoring(3);
        assert!(!h.is_ready());
        h.partition_revoked(3);
        assert!(h.is_ready());
    }

    #[test]
    fn every_worker_must_be_joined_and_restored() {
        let h = Health::with_workers(3);
        h.set_running(true);
        let w: Vec<WorkerHealth> = (0..3).map(|i| h.worker(i)).collect();
        assert_eq!(
            h.readiness(),
            Err("worker 0: joining consumer group".to_string())
        );
        w[0].partitions_assigned(&[0]);
        w[2].partitions_assigned(&[]);
        assert_eq!(
            h.readiness(),
            Err("worker 1: joining consumer group".to_string())
        );
        w[1].partitions_assigned(&[1, 2]);
        assert_eq!(
            h.readiness(),
            Err("worker 0: restoring partitions [0] (0: starting); worker 1: restoring partitions [1, 2] (1: starting, 2: starting)".to_string())
        );
        assert_eq!(
            h.restoring().iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        w[0].partition_ready(0);
        w[1].partition_ready(1);
        w[1].partition_ready(2);
        assert!(h.is_ready());
        assert_eq!(h.assignments(), [vec![0], vec![1, 2], vec![]]);
        // One worker's trouble is the instance's, named with its worker.
        w[2].set_transaction_stalled(Some("commit retrying"));
        assert_eq!(
            h.readiness(),
            Err("worker 2: transaction stalled: commit retrying".to_string())
        );
        w[2].set_transaction_stalled(None);
        w[1].session_lost("fenced");
        assert_eq!(
            h.readiness(),
            Err("worker 1: restarting the kafka session: fenced".to_string())
        );
        assert_eq!(h.assignments(), [vec![0], vec![], vec![]]);
        w[1].session_started();
        // A partition moving from one worker to another, like between instances.
        w[0].partition_revoked(0);
        w[1].partitions_assigned(&[0, 1, 2]);
        assert!(!h.is_ready());
        for p in 0..3 {
            w[1].partition_ready(p);
        }
        assert!(h.is_ready());
        assert_eq!(h.assignments(), [vec![], vec![0, 1, 2], vec![]]);
        w[0].set_broker_reachable(false);
        assert_eq!(h.readiness(), Err("broker unreachable".to_string()));
    }

    #[test]
    fn one_worker_reads_as_before_and_several_name_their_partitions_when_ready() {
        let h = Health::new();
        h.set_running(true);
        h.worker(0).partitions_assigned(&[]);
        assert_eq!(h.ready_body(), "ready\n");
        h.set_workers(2);
        assert_eq!(
            h.readiness(),
            Err("worker 0: joining consumer group".to_string())
        );
        h.worker(0).partitions_assigned(&[1]);
        h.worker(0).partition_ready(1);
        h.worker(1).partitions_assigned(&[]);
        assert!(h.is_ready());
        assert_eq!(
            h.ready_body(),
            "ready\nworker 0: partitions [1]\nworker 1: partitions []\n"
        );
    }
}
