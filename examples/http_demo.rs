//! The HTTP API in front of a worker: Durable Functions' "hello cities" and counter demos,
//! driven with curl.
//!
//! ```sh
//! cargo run --example http_demo                # serves http://127.0.0.1:7071 (--port N to change)
//! curl -si -X POST localhost:7071/orchestrations/hello_cities     # 202 + Location
//! curl -s 'localhost:7071/instances/<id>?showHistory=true'       # Completed, with the history
//! curl -si localhost:7071/entities/counter/QConSF2019             # 404: no state yet
//! curl -si -X POST 'localhost:7071/entities/counter/QConSF2019?op=add' -d 10   # 202
//! curl -s localhost:7071/entities/counter/QConSF2019              # 10
//! ```
//!
//! Options: `--port N` (0 picks a free port), `--token T` (require `Authorization: Bearer T`),
//! `--redis URL` (the Redis backend, e.g. `redis://127.0.0.1:6379`, instead of the embedded
//! one: several demo processes on one Redis share the work). The first line printed is
//! `listening on http://ADDR`.

use durable::prelude::*;
use durable_http::HttpConfig;
use std::io::Write;

#[activity]
async fn say_hello(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

/// Greets the given cities, or Tokyo, Seattle and London when started without input.
#[orchestrator]
async fn hello_cities(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<Vec<String>, OrchestrationError> {
    let cities = cities.unwrap_or_else(|| vec!["Tokyo".to_string(), "Seattle".to_string(), "London".to_string()]);
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city).await?);
    }
    Ok(greetings)
}

/// A counter whose state is a bare number in JSON (`10`).
#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
struct Counter {
    value: i64,
}

#[entity(name = "counter")]
impl Counter {
    fn add(&mut self, amount: i64) {
        self.value += amount;
    }
    fn reset(&mut self) {
        self.value = 0;
    }
    fn get(&self) -> i64 {
        self.value
    }
}

struct Args {
    port: u16,
    token: Option<String>,
    redis: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { port: 7071, token: None, redis: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v.parse().map_err(|_| format!("--port: {v:?} is not a port number"))?;
            }
            "--token" => args.token = Some(value("--token")?),
            "--redis" => args.redis = Some(value("--redis")?),
            "-h" | "--help" => {
                return Err("usage: http_demo [--port N] [--token T] [--redis URL]".to_string());
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: http_demo [--port N] [--token T] [--redis URL]"
                ));
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("http_demo: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let backend: std::sync::Arc<dyn durable::backend::Backend> = match &args.redis {
        None => std::sync::Arc::new(durable::backend::Memory::new()),
        Some(url) => std::sync::Arc::new(durable::backend::Redis::connect(url).await?),
    };
    let worker = Worker::builder_arc(backend.clone())
        .orchestrator(hello_cities)
        .activity(say_hello)
        .entity::<Counter>()
        .start()
        .await?;
    let client = Client::from_arc(backend);
    let mut config = HttpConfig::new().with_orchestrators(["hello_cities"]).with_entities(["counter"]);
    if let Some(t) = args.token {
        config = config.with_token(t);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    durable_http::serve_listener(listener, client, config, shutdown).await?;
    worker.shutdown().await?;
    Ok(())
}
