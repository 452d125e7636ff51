//! The backends under test: the embedded [`Memory`] backend, [`Redis`] on a `redis-server` of
//! the test's own, and [`Redis`] on a Redis Cluster (3 masters, 3 replicas) of the test
//! process's own, behind one trait, and [`on_both_backends!`](crate::on_both_backends), which
//! runs each test on all three.

use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;
use durable::backend::{Backend, Memory, Redis};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// What the tests need beyond [`Backend`]: a clock to move and a look at timers and queued
/// activities.
pub trait TestBackend: Backend + Clone {
    /// Move the clock forward (with a virtual clock, the only way it moves).
    fn advance(&self, d: Duration);
    /// The backend's clock.
    fn time(&self) -> SystemTime;
    /// How many durable timers wait.
    fn pending_timers(&self) -> impl Future<Output = usize> + Send;
    /// When the next durable timer is due.
    fn next_timer(&self) -> impl Future<Output = Option<SystemTime>> + Send;
    /// How many activities wait to be fetched.
    fn pending_activities(&self) -> impl Future<Output = usize> + Send;
}

impl TestBackend for Memory {
    fn advance(&self, d: Duration) {
        Memory::advance(self, d)
    }
    fn time(&self) -> SystemTime {
        Memory::time(self)
    }
    async fn pending_timers(&self) -> usize {
        Memory::pending_timers(self)
    }
    async fn next_timer(&self) -> Option<SystemTime> {
        Memory::next_timer(self)
    }
    async fn pending_activities(&self) -> usize {
        Memory::pending_activities(self)
    }
}

impl TestBackend for Redis {
    fn advance(&self, d: Duration) {
        Redis::advance(self, d)
    }
    fn time(&self) -> SystemTime {
        Redis::time(self)
    }
    async fn pending_timers(&self) -> usize {
        Redis::pending_timers(self).await.unwrap()
    }
    async fn next_timer(&self) -> Option<SystemTime> {
        Redis::next_timer(self).await.unwrap()
    }
    async fn pending_activities(&self) -> usize {
        Redis::pending_activities(self).await.unwrap()
    }
}

/// Which clock a test wants.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The machine's clock.
    Real,
    /// A clock that stands still until [`TestBackend::advance`].
    Virtual,
}

/// An embedded backend with this clock.
pub fn memory(clock: Clock) -> Memory {
    match clock {
        Clock::Real => Memory::new(),
        Clock::Virtual => Memory::with_virtual_clock(),
    }
}

/// A Redis backend with this clock, on a `redis-server` of its own (kept alive by the
/// returned guard), with 2 s partition leases.
pub async fn redis(clock: Clock) -> (Redis, RedisServer) {
    let server = RedisServer::start();
    let mut b = Redis::builder(server.url()).lease_duration(Duration::from_secs(2));
    if let Clock::Virtual = clock {
        b = b.virtual_clock();
    }
    let backend = b.connect().await.expect("connect to the test's redis-server");
    (backend, server)
}

/// A Redis backend with this clock on the test process's shared Redis Cluster
/// ([`RedisCluster::shared`]), under a task hub (key prefix) of its own, with 2 s partition
/// leases.
pub async fn redis_cluster(clock: Clock) -> Redis {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let cluster = tokio::task::spawn_blocking(RedisCluster::shared).await.expect("start the shared cluster");
    let prefix = format!("t{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut b = Redis::builder(cluster.url()).prefix(prefix).lease_duration(Duration::from_secs(2));
    if let Clock::Virtual = clock {
        b = b.virtual_clock();
    }
    b.connect().await.expect("connect to the test's Redis Cluster")
}

/// Run each test on every backend: `memory::NAME`, `redis::NAME` (on a `redis-server` of its
/// own) and `cluster::NAME` (on the test process's Redis Cluster, under a task hub of its own).
///
/// Each test is an `async fn NAME<B: TestBackend>(backend: B)` beside the macro call. The
/// first line is the test attribute (the runtime flavor); a test that wants a virtual clock
/// says so with `: Virtual` (the default is `: Real`).
///
/// ```no_run
/// use durable_test_support::backends::TestBackend;
///
/// async fn timer_fires<B: TestBackend>(backend: B) { /* … */ }
/// async fn start_and_complete<B: TestBackend>(backend: B) { /* … */ }
///
/// durable_test_support::on_both_backends! {
///     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
///     timer_fires: Virtual,
///     start_and_complete,
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! on_both_backends {
    (@clock) => {
        $crate::backends::Clock::Real
    };
    (@clock $clock:ident) => {
        $crate::backends::Clock::$clock
    };
    (#[$test:meta] $($name:ident $(: $clock:ident)?),* $(,)?) => {
        mod memory {
            $(
                #[$test]
                async fn $name() {
                    super::$name($crate::backends::memory($crate::on_both_backends!(@clock $($clock)?))).await;
                }
            )*
        }
        mod redis {
            $(
                #[$test]
                async fn $name() {
                    let (backend, server) =
                        $crate::backends::redis($crate::on_both_backends!(@clock $($clock)?)).await;
                    super::$name(backend).await;
                    drop(server);
                }
            )*
        }
        mod cluster {
            $(
                #[$test]
                async fn $name() {
                    let backend =
                        $crate::backends::redis_cluster($crate::on_both_backends!(@clock $($clock)?)).await;
                    super::$name(backend).await;
                }
            )*
        }
    };
}
