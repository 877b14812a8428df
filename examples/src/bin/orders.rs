//! The orders services on their own, against real brokers (the `livecheck` worker runs apart).
//!
//! `cargo run --bin orders -- --brokers HOST:PORT [--bind 127.0.0.1:8080] [--break-execution]`
//!
//! The topics they use (`orders`, `order-execution` and livecheck's three) are created where
//! missing, so they start on a broker without topic auto-creation, before or after the worker.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use livecheck::transport::kafka::{KafkaConfig, KafkaTransport};
use livecheck_examples::orders::{self, OrdersConfig};

/// The orders API and agents of the livecheck demo.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LIVECHECK_BROKERS")]
    brokers: String,
    /// Where the HTTP API listens.
    #[arg(long, env = "ORDERS_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Partitions of the topics created (livecheck's tests and bus topics must have the same
    /// count as the worker's).
    #[arg(long, env = "LIVECHECK_PARTITIONS", default_value_t = 8)]
    partitions: i32,
    /// Drop every order in the execution agent (to see TIMEOUTs and a suite failure).
    #[arg(long)]
    break_execution: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orders: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut config = OrdersConfig::new(args.brokers.clone());
    config.break_execution |= args.break_execution;
    // The services trigger tests and send signals through livecheck's default topics.
    let mut kafka = KafkaConfig::new(args.brokers);
    kafka.partitions = args.partitions;
    livecheck::transport::reach::check_reachable(&kafka, Duration::from_secs(10)).await?;
    orders::ensure_topics(&config, &kafka).await?;
    let client = livecheck::Client::new(KafkaTransport::new(kafka)?);
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|e| format!("cannot listen on {} ({e}); use --bind", args.bind))?;
    let url = format!("http://{}", listener.local_addr()?);
    orders::case::set_service_url(&url);
    eprintln!("orders: API on {url}");
    tokio::select! {
        result = orders::run(config, client, listener) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
