//! A steady load of orders through the services' API.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Places orders through the API at `rate` per second until stopped; counts failed calls.
#[derive(Debug)]
pub struct Load {
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<(usize, usize)>,
}

impl Load {
    /// Starts placing orders on the services at `base`.
    pub fn start(base: String, rate: f64) -> Load {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut calls = Vec::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tick.tick() => {}
                }
                let request = client
                    .get(format!("{base}/order/init/sell/"))
                    .timeout(Duration::from_secs(15))
                    .send();
                calls.push(tokio::spawn(async move {
                    request.await.is_ok_and(|r| r.status().is_success())
                }));
            }
            let (mut ok, mut failed) = (0, 0);
            for call in calls {
                if call.await.unwrap_or(false) {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        });
        Load { stop, task }
    }

    /// Stops, waits for the calls in flight, and returns (calls that succeeded, calls that
    /// failed).
    pub async fn stop(self) -> (usize, usize) {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
