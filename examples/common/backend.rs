//! The backend an example runs on: the embedded `Memory` backend by default, Redis with
//! `--redis URL` (each run uses its own key prefix, so runs do not see each other). With
//! `--otlp URL` (and `--features otel`), traces go to that OTLP/HTTP collector.

use durable::backend::{Backend, Memory, Redis};
use std::sync::Arc;
use std::time::Duration;

pub enum ExampleBackend {
    Memory(Memory),
    Redis(Redis),
}

impl ExampleBackend {
    /// From the command line: `--redis URL` selects Redis. With `virtual_clock`, time stands
    /// still until `advance` (in this process).
    pub async fn from_args(virtual_clock: bool) -> Result<Self, durable::Error> {
        let args: Vec<String> = std::env::args().collect();
        if let Some(i) = args.iter().position(|a| a == "--otlp") {
            let Some(endpoint) = args.get(i + 1) else {
                eprintln!("--otlp needs a collector URL, e.g. --otlp http://127.0.0.1:4318");
                std::process::exit(2)
            };
            telemetry::init(endpoint)?;
        }
        let url = args.iter().position(|a| a == "--redis").map(|i| {
            args.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("--redis needs a URL, e.g. --redis redis://127.0.0.1:6379");
                std::process::exit(2)
            })
        });
        Ok(match url {
            None if virtual_clock => ExampleBackend::Memory(Memory::with_virtual_clock()),
            None => ExampleBackend::Memory(Memory::new()),
            Some(url) => {
                let prefix = format!("durable-example-{}", std::process::id());
                let mut b = Redis::builder(url).prefix(prefix);
                if virtual_clock {
                    b = b.virtual_clock();
                }
                println!("(on Redis, key prefix durable-example-{})", std::process::id());
                ExampleBackend::Redis(b.connect().await?)
            }
        })
    }

    pub fn arc(&self) -> Arc<dyn Backend> {
        match self {
            ExampleBackend::Memory(m) => Arc::new(m.clone()),
            ExampleBackend::Redis(r) => Arc::new(r.clone()),
        }
    }

    /// Move the virtual clock forward.
    #[allow(dead_code)]
    pub fn advance(&self, d: Duration) {
        match self {
            ExampleBackend::Memory(m) => m.advance(d),
            ExampleBackend::Redis(r) => r.advance(d),
        }
    }

    /// How many timers wait.
    #[allow(dead_code)]
    pub async fn pending_timers(&self) -> Result<usize, durable::Error> {
        match self {
            ExampleBackend::Memory(m) => Ok(m.pending_timers()),
            ExampleBackend::Redis(r) => r.pending_timers().await,
        }
    }
}

impl Drop for ExampleBackend {
    fn drop(&mut self) {
        telemetry::flush();
    }
}

#[cfg(feature = "otel")]
mod telemetry {
    use std::sync::Mutex;

    static TELEMETRY: Mutex<Option<durable::telemetry::Telemetry>> = Mutex::new(None);

    pub fn init(endpoint: &str) -> Result<(), durable::Error> {
        *TELEMETRY.lock().unwrap() = Some(durable::telemetry::init_otlp(endpoint)?);
        println!("(traces go to {endpoint})");
        Ok(())
    }

    /// Export what is buffered (the example ends).
    pub fn flush() {
        if let Some(t) = TELEMETRY.lock().unwrap().take() {
            let _ = t.shutdown();
        }
    }
}

#[cfg(not(feature = "otel"))]
mod telemetry {
    pub fn init(_endpoint: &str) -> Result<(), durable::Error> {
        eprintln!("--otlp needs the `otel` feature: cargo run --features otel --example NAME -- --otlp URL");
        std::process::exit(2)
    }

    pub fn flush() {}
}
