//! Requests counted and timed by method, matched route template and status: a tower layer
//! around the router's routes (inside routing, so it sees the [`MatchedPath`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use metrics::{Counter, Histogram, Label};
use metrics_exporter_prometheus::PrometheusRecorder;
use pin_project_lite::pin_project;

use super::{register_counter, register_histogram, route_table, HTTP_DURATION, HTTP_REQUESTS};

/// The HTTP series of one app: per route slot, the (method, status) pairs seen so far with
/// their handles.
pub(crate) struct HttpSeries {
    recorder: Arc<PrometheusRecorder>,
    /// Indexed by route slot. A pair seen before costs one wait-free load and a short scan;
    /// a new pair registers its series and swaps in a longer list (rare: methods and
    /// statuses per route are few).
    by_route: Box<[ArcSwap<Vec<StatusSeries>>]>,
}

/// The series of one (route, method, status).
#[derive(Clone)]
struct StatusSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl HttpSeries {
    pub(super) fn new(recorder: Arc<PrometheusRecorder>) -> Self {
        let slots = route_table().slots();
        HttpSeries {
            recorder,
            by_route: (0..slots)
                .map(|_| ArcSwap::from_pointee(Vec::new()))
                .collect(),
        }
    }

    fn observe(&self, slot: usize, method: &'static str, status: u16, started: Instant) {
        let Some(seen) = self.by_route.get(slot) else {
            return;
        };
        let seconds = started.elapsed().as_secs_f64();
        {
            let current = seen.load();
            if let Some(series) = current
                .iter()
                .find(|s| s.status == status && s.method == method)
            {
                series.requests.increment(1);
                series.duration.record(seconds);
                return;
            }
        }
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route_table().label(slot)),
            Label::new("status", status.to_string()),
        ];
        let series = StatusSeries {
            method,
            status,
            requests: register_counter(&self.recorder, HTTP_REQUESTS, labels.clone()),
            duration: register_histogram(&self.recorder, HTTP_DURATION, labels),
        };
        series.requests.increment(1);
        series.duration.record(seconds);
        seen.rcu(|current| {
            let mut next = Vec::clone(current);
            if !next
                .iter()
                .any(|s| s.status == status && s.method == method)
            {
                next.push(series.clone());
            }
            next
        });
    }
}

/// The method as a label: the standard ones by name, anything else as `other` (a client
/// inventing methods cannot grow the number of series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request it wraps; with no series (metrics disabled) it only
/// passes requests on.
#[derive(Clone)]
pub(crate) struct HttpMetricsLayer {
    series: Option<Arc<HttpSeries>>,
}

impl HttpMetricsLayer {
    /// The layer recording into `metrics`; with `None`, one that records nothing.
    pub(crate) fn of(metrics: Option<&super::Metrics>) -> Self {
        HttpMetricsLayer {
            series: metrics.map(|m| m.http.clone()),
        }
    }
}

impl<S> tower::Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService {
            inner,
            series: self.series.clone(),
        }
    }
}

/// The service [`HttpMetricsLayer`] makes.
#[derive(Clone)]
pub(crate) struct HttpMetricsService<S> {
    inner: S,
    series: Option<Arc<HttpSeries>>,
}

impl<S, B, ResBody> tower::Service<Request<B>> for HttpMetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Timed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let watch = self.series.as_ref().map(|series| Watch {
            series: series.clone(),
            slot: route_table().slot(
                request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("", MatchedPath::as_str),
            ),
            method: method_label(request.method()),
            started: Instant::now(),
        });
        Timed {
            inner: self.inner.call(request),
            watch,
        }
    }
}

/// What a request's answer is recorded against.
struct Watch {
    series: Arc<HttpSeries>,
    slot: usize,
    method: &'static str,
    started: Instant,
}

pin_project! {
    /// The wrapped service's future; records the request when the response head is ready.
    /// A request whose client left before that (the future dropped) is not recorded.
    pub(crate) struct Timed<F> {
        #[pin]
        inner: F,
        watch: Option<Watch>,
    }
}

impl<F, ResBody, E> Future for Timed<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let (Some(watch), Ok(response)) = (this.watch.take(), &output) {
            watch.series.observe(
                watch.slot,
                watch.method,
                response.status().as_u16(),
                watch.started,
            );
        }
        Poll::Ready(output)
    }
}
