//! What a server holds for its clients, bounded: the bytes of request bodies in flight (one
//! budget over all requests) and the connections of each client address. Both servers share
//! these counters so that they refuse the same way; the HTTP side of each stays in its server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The bounds a server keeps under hostile input (the `[limits]` table of both servers'
/// configuration files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// The most bytes of request bodies held at once, over every request in flight together.
    /// A body that would go past it is refused with `503` and `Retry-After`, unread.
    pub body_budget_bytes: usize,
    /// The most connections one client address may hold open at once. A request on a
    /// connection past it is answered `503` with `Retry-After`, and the connection is closed.
    pub connections_per_peer: usize,
    /// How long a request body may take to arrive after the request head, real ms.
    pub body_deadline_ms: u64,
}

impl ServerLimits {
    /// 64 MiB of bodies in flight: 64 full-size (1 MiB) bodies at once, far beyond what the
    /// harness or a carrier's integration sends concurrently, far below what hurts a machine.
    pub const DEFAULT_BODY_BUDGET_BYTES: usize = 64 * 1024 * 1024;

    /// The default body deadline: 1 MiB in 30 s is 35 KB/s, slower than any real client.
    pub const DEFAULT_BODY_DEADLINE_MS: u64 = 30_000;

    /// Defaults with `connections_per_peer` connections per client address.
    pub const fn with_connections_per_peer(connections_per_peer: usize) -> Self {
        Self {
            body_budget_bytes: Self::DEFAULT_BODY_BUDGET_BYTES,
            connections_per_peer,
            body_deadline_ms: Self::DEFAULT_BODY_DEADLINE_MS,
        }
    }

    /// Every value out of range, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.body_budget_bytes < crate::MAX_BODY_BYTES {
            out.push((
                "body_budget_bytes",
                format!(
                    "must be at least {} (one full-size body), is {}",
                    crate::MAX_BODY_BYTES,
                    self.body_budget_bytes
                ),
            ));
        }
        if self.connections_per_peer < 1 {
            out.push(("connections_per_peer", "must be >= 1".to_owned()));
        }
        if self.body_deadline_ms < 1 {
            out.push(("body_deadline_ms", "must be >= 1".to_owned()));
        }
        out
    }
}

impl Default for ServerLimits {
    /// 1024 connections per address: the harness opens up to a few hundred at once on loopback
    /// (its webhook sender, probes and clients), and loopback is one address.
    fn default() -> Self {
        Self::with_connections_per_peer(1024)
    }
}

/// Bytes of request bodies held at once, over every request: a shared counter that grants
/// bytes until the budget is spent. Cloning shares the budget.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    held: AtomicUsize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                limit,
                held: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The bytes granted now, over every grant alive.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Acquire)
    }

    /// An empty grant, to grow as bytes arrive.
    pub fn grant(&self) -> BodyGrant {
        BodyGrant {
            budget: Arc::clone(&self.inner),
            bytes: 0,
        }
    }

    /// A grant of `bytes` at once, or `None` when the budget does not have them.
    pub fn try_grant(&self, bytes: usize) -> Option<BodyGrant> {
        let mut grant = self.grant();
        grant.try_grow(bytes).then_some(grant)
    }
}

impl BudgetInner {
    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|after| *after <= self.limit)
            })
            .is_ok()
    }
}

/// Bytes taken from a [`ByteBudget`]; they go back when the grant is dropped.
#[derive(Debug)]
pub struct BodyGrant {
    budget: Arc<BudgetInner>,
    bytes: usize,
}

impl BodyGrant {
    /// The bytes this grant holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `more` bytes; `false`, and nothing taken, when the budget does not have them.
    pub fn try_grow(&mut self, more: usize) -> bool {
        let taken = self.budget.try_take(more);
        if taken {
            self.bytes += more;
        }
        taken
    }

    /// Holds at least `bytes` in all: takes what is missing; `false` when the budget does not
    /// have it.
    pub fn try_cover(&mut self, bytes: usize) -> bool {
        bytes <= self.bytes || self.try_grow(bytes - self.bytes)
    }
}

impl Drop for BodyGrant {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Open connections per client address, capped. Cloning shares the counts.
#[derive(Debug, Clone)]
pub struct PeerConnections {
    inner: Arc<PeersInner>,
}

#[derive(Debug)]
struct PeersInner {
    limit: usize,
    // Only looked up by key, never iterated, so its order cannot reach any output.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PeerConnections {
    /// At most `limit` connections per address.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(PeersInner {
                limit,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The cap per address.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// A slot for one more connection from `peer`, or `None` when it holds `limit` already.
    pub fn try_open(&self, peer: IpAddr) -> Option<PeerSlot> {
        let mut open = self.inner.lock();
        let count = open.entry(peer).or_insert(0);
        if *count >= self.inner.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: Arc::clone(&self.inner),
            peer,
        })
    }

    /// How many connections `peer` holds now.
    pub fn open(&self, peer: IpAddr) -> usize {
        self.inner.lock().get(&peer).copied().unwrap_or(0)
    }
}

impl PeersInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Every change is one step on a count: a poisoned map is still consistent.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open connection of a client address; dropped when the connection closes.
#[derive(Debug)]
pub struct PeerSlot {
    peers: Arc<PeersInner>,
    peer: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.lock();
        if let Some(count) = open.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            // Addresses come and go: forget those with nothing open, so the map stays small.
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_refused_past_the_budget_and_returned_on_drop() {
        let budget = ByteBudget::new(100);
        let a = budget.try_grant(60).unwrap();
        assert!(budget.try_grant(41).is_none());
        let mut b = budget.grant();
        assert!(b.try_grow(40));
        assert!(!b.try_grow(1), "nothing left");
        assert_eq!(b.bytes(), 40);
        assert_eq!(budget.held(), 100);
        drop(a);
        assert!(b.try_cover(90));
        assert!(b.try_cover(50), "already covered");
        assert_eq!(b.bytes(), 90);
        drop(b);
        assert_eq!(budget.held(), 0);
        assert!(budget.try_grant(usize::MAX).is_none(), "no overflow");
    }

    #[test]
    fn each_address_has_its_own_cap_and_slots_come_back() {
        let peers = PeerConnections::new(2);
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        let a = peers.try_open(one).unwrap();
        let _b = peers.try_open(one).unwrap();
        assert!(peers.try_open(one).is_none());
        let _c = peers.try_open(two).unwrap();
        drop(a);
        assert_eq!(peers.open(one), 1);
        assert!(peers.try_open(one).is_some());
    }

    #[test]
    fn the_defaults_are_in_range_and_zeroes_are_not() {
        assert!(ServerLimits::default().problems().is_empty());
        let zero = ServerLimits {
            body_budget_bytes: 0,
            connections_per_peer: 0,
            body_deadline_ms: 0,
        };
        let keys: Vec<&str> = zero.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "body_budget_bytes",
                "connections_per_peer",
                "body_deadline_ms"
            ]
        );
    }
}
