//! The channels between executors: one from every executor to every other, all made on
//! the starting thread before any executor runs.
//!
//! glommio's own `MeshBuilder` is not used: it shares an `Rc` among the executor threads
//! as they join, so its reference count is changed from several threads at once.
//! AddressSanitizer caught one of those races freeing memory another executor still
//! used; the same race would explain an executor that once panicked on a ring `RefCell`
//! that nothing held. Here each executor takes its own ends, and nothing but the channels,
//! which are made for crossing threads, is shared.

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

/// One executor's ends of the mesh, before it connects them.
pub struct Ends<T: Send> {
    me: usize,
    /// `senders[to]` leads to executor `to`; `None` at `me`.
    senders: Vec<Option<SharedSender<T>>>,
    /// One from each other executor.
    receivers: Vec<SharedReceiver<T>>,
}

/// A full mesh among `executors` executors, each channel holding up to `capacity`
/// messages before its sender waits. Entry `i` holds executor `i`'s ends.
pub fn full<T: Send + 'static>(executors: usize, capacity: usize) -> Vec<Ends<T>> {
    let mut ends: Vec<Ends<T>> = (0..executors)
        .map(|me| Ends {
            me,
            senders: (0..executors).map(|_| None).collect(),
            receivers: Vec::with_capacity(executors.saturating_sub(1)),
        })
        .collect();
    for from in 0..executors {
        for to in (0..executors).filter(|to| *to != from) {
            let (sender, receiver) = shared_channel::new_bounded(capacity);
            ends[from].senders[to] = Some(sender);
            ends[to].receivers.push(receiver);
        }
    }
    ends
}

impl<T: Send + 'static> Ends<T> {
    /// Connects every end on the calling executor: the senders, and the receivers to
    /// read from. Each connection waits for its other end, so all are started before
    /// any is waited on.
    pub async fn connect(self) -> (Mesh<T>, Vec<ConnectedReceiver<T>>) {
        let senders: Vec<_> = self
            .senders
            .into_iter()
            .map(|end| end.map(|sender| glommio::spawn_local(sender.connect())))
            .collect();
        let receivers: Vec<_> = self
            .receivers
            .into_iter()
            .map(|receiver| glommio::spawn_local(receiver.connect()))
            .collect();
        let mut connected = Vec::with_capacity(senders.len());
        for sender in senders {
            connected.push(match sender {
                Some(task) => Some(task.await),
                None => None,
            });
        }
        let mut streams = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            streams.push(receiver.await);
        }
        (
            Mesh {
                me: self.me,
                senders: connected,
            },
            streams,
        )
    }
}

/// One executor's connected senders.
pub struct Mesh<T: Send> {
    me: usize,
    senders: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send> Mesh<T> {
    /// This executor's index, from 0.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Sends `msg` to executor `to`, waiting for room. Fails when `to` is this executor,
    /// is out of range, or no longer receives.
    pub async fn send_to(&self, to: usize, msg: T) -> Result<(), Unreachable> {
        match self.senders.get(to) {
            Some(Some(sender)) => sender.send(msg).await.map_err(|_| Unreachable),
            _ => Err(Unreachable),
        }
    }
}

/// The executor a message was sent to cannot receive it.
#[derive(Debug)]
pub struct Unreachable;

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
    use std::sync::{Arc, Mutex};

    #[test]
    fn every_executor_reaches_every_other_and_only_them() {
        const EXECUTORS: usize = 3;
        let ends = Arc::new(Mutex::new(full::<(usize, usize)>(EXECUTORS, 4)));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (ends_in, heard_in) = (ends.clone(), heard.clone());
        let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(EXECUTORS))
            .on_all_shards(move || {
                let mine = ends_in.lock().ok().and_then(|mut all| all.pop());
                let heard = heard_in.clone();
                async move {
                    let Some(mine) = mine else { return };
                    let exchange = async {
                        let (mesh, streams) = mine.connect().await;
                        let me = mesh.me();
                        assert!(
                            mesh.send_to(me, (me, me)).await.is_err(),
                            "no channel to itself"
                        );
                        assert!(mesh.send_to(EXECUTORS, (me, 0)).await.is_err());
                        for to in (0..EXECUTORS).filter(|to| *to != me) {
                            assert!(mesh.send_to(to, (me, to)).await.is_ok());
                        }
                        for stream in streams {
                            if let Some((from, to)) = stream.recv().await {
                                heard.lock().expect("not poisoned").push((from, to, me));
                            }
                        }
                        Ok(())
                    };
                    let bound = std::time::Duration::from_secs(20);
                    assert!(
                        glommio::timer::timeout(bound, exchange).await.is_ok(),
                        "mesh stalled"
                    );
                }
            })
            .expect("executors start");
        for result in pool.join_all() {
            assert!(result.is_ok(), "an executor panicked");
        }
        let mut heard = heard.lock().expect("not poisoned").clone();
        heard.sort_unstable();
        let expected: Vec<_> = (0..EXECUTORS)
            .flat_map(|from| {
                (0..EXECUTORS)
                    .filter(move |to| *to != from)
                    .map(move |to| (from, to, to))
            })
            .collect();
        assert_eq!(
            heard, expected,
            "each message arrives once, where it was sent"
        );
    }
}
