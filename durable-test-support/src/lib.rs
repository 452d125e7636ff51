//! # durable-test-support
//!
//! What the workspace's test crates share (not published): a dev-dependency of `durable`,
//! `durable-runtime`, `durable-http` and `durable-cli`.
//!
//! ```no_run
//! use durable::Client;
//! use durable_test_support::backends::TestBackend;
//! use durable_test_support::fixtures::{hello, say_hello};
//! use durable_test_support::wait::PATIENCE;
//!
//! async fn greets<B: TestBackend>(backend: B) {
//!     let worker = durable::Worker::builder(backend.clone())
//!         .orchestrator(hello)
//!         .activity(say_hello)
//!         .start()
//!         .await
//!         .unwrap();
//!     let client = Client::new(backend);
//!     let id = client.start(hello, vec!["Oslo".to_string()]).await.unwrap();
//!     let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
//!     assert_eq!(done.output::<Vec<String>>().unwrap(), ["Hello Oslo!"]);
//!     worker.shutdown().await.unwrap();
//! }
//!
//! // `memory::greets` and `redis::greets`, the latter on a redis-server of its own.
//! durable_test_support::on_both_backends! {
//!     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//!     greets,
//! }
//! # fn main() {}
//! ```
//!
//! - [`redis_server`]: a `redis-server` of the test's own, on a free port in a temp dir.
//! - [`backends`]: the backends under test and [`on_both_backends!`].
//! - [`wait`]: waiting for something to happen, with one patience.
//! - [`fixtures`]: shared activities, orchestrators and the `Counter` entity.
//! - [`differential`]: the differential harness of the orchestrator compiler ([`diff!`]).
//! - [`history`]: a history checked after a fault (no event lost or doubled).
//! - [`leftovers`]: nothing of any instance left in Redis once all are purged.
//! - [`spans`]: a `tracing` subscriber that captures the runtime's spans, and a trace as a tree.
//! - [`process`]: a child process running one ignored test of the binary (a worker to kill).

pub mod backends;
pub mod differential;
pub mod fixtures;
pub mod history;
pub mod leftovers;
pub mod process;
pub mod redis_cluster;
pub mod redis_server;
pub mod spans;
pub mod wait;
