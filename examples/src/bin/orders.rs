//! The orders services on their own, against real brokers (the `livecheck` worker runs apart).
//!
//! `cargo run --bin orders -- --brokers HOST:PORT [--bind 127.0.0.1:8080] [--break-execution]`

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
    /// Drop every order in the execution agent (to see TIMEOUTs and a suite failure).
    #[arg(long)]
    break_execution: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let mut config = OrdersConfig::new(args.brokers.clone());
    config.break_execution |= args.break_execution;
    // The services trigger tests and send signals through livecheck's default topics.
    let client = livecheck::Client::new(KafkaTransport::new(KafkaConfig::new(args.brokers))?);
    let listener = tokio::net::TcpListener::bind(&args.bind).await?;
    let url = format!("http://{}", listener.local_addr()?);
    orders::case::set_service_url(&url);
    eprintln!("orders: API on {url}");
    tokio::select! {
        result = orders::run(config, client, listener) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
