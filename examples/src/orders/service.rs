//! The orders HTTP API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use livecheck::propagation::http::TestContextLayer;
use livecheck::propagation::kafka::attach_test_headers;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;

use super::case::test_order;
use super::{Order, OrderStore, OrdersConfig};

/// What the handlers share.
#[derive(Clone)]
pub struct State(Arc<Inner>);

struct Inner {
    config: OrdersConfig,
    client: livecheck::Client,
    store: OrderStore,
    producer: FutureProducer,
    http: reqwest_middleware::ClientWithMiddleware,
    base: String,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("base", &self.0.base)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The service's state; `base` is its own URL (the init endpoint calls the create endpoint).
    pub fn new(
        config: OrdersConfig,
        client: livecheck::Client,
        store: OrderStore,
        base: String,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = config.client_config(false).create()?;
        Ok(State(Arc::new(Inner {
            config,
            client,
            store,
            producer,
            http: livecheck::propagation::http::client(),
            base,
        })))
    }
}

/// The API's routes, behind the layer that makes a request's test the current test.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/order/init/{side}/", get(init_order))
        .route("/order/create/", post(create_order))
        .route("/order/{id}", get(read_order))
        .layer(TestContextLayer)
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct InitQuery {
    fake: Option<u8>,
}

/// Places an order: maybe triggers a test of it, then calls the create endpoint in the test's
/// scope, so the call carries the test on.
async fn init_order(
    AxumState(state): AxumState<State>,
    Path(side): Path<String>,
    Query(query): Query<InitQuery>,
) -> Result<Json<Order>, (StatusCode, String)> {
    let order = Order {
        id: uuid::Uuid::new_v4().to_string(),
        side: side.clone(),
        symbol: "ACME".into(),
        quantity: 10,
        price: 42.5,
    };
    let fake = query.fake == Some(1);
    let test = state
        .0
        .client
        .scope(async {
            if fake {
                test_order.trigger(order.id.clone(), side).await.map(Some)
            } else {
                test_order.maybe_trigger(order.id.clone(), side).await
            }
        })
        .await
        .map_err(internal)?;
    let create = async {
        state
            .0
            .http
            .post(format!("{}/order/create/", state.0.base))
            .json(&order)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(|r| r.error_for_status().map_err(Into::into))
    };
    match test {
        Some(test) => livecheck::with_test(test, create).await,
        None => create.await,
    }
    .map_err(internal)?;
    Ok(Json(order))
}

/// Produces the order to the orders topic, with the current test's headers.
async fn create_order(
    AxumState(state): AxumState<State>,
    Json(order): Json<Order>,
) -> Result<StatusCode, (StatusCode, String)> {
    let payload = serde_json::to_vec(&order).map_err(internal)?;
    let headers = attach_test_headers(OwnedHeaders::new());
    state
        .0
        .producer
        .send(
            FutureRecord::to(&state.0.config.orders_topic)
                .key(&order.id)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| internal(e))?;
    Ok(StatusCode::CREATED)
}

/// Reads an order from the store.
async fn read_order(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Json<Order>, StatusCode> {
    state
        .0
        .store
        .get(&id)
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

fn internal(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}
