//! The carrier API as an actix-web server: routes, and starting it on a runtime of its own.

mod hooks;
pub(crate) mod limits;
mod problem;
mod webhook;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{self, Next};
use actix_web::{App, HttpRequest, HttpServer, guard, web};
use oc_protocol::paths;

use crate::shared::Shared;

/// The path of the admin endpoint serving the ground truth.
pub const GROUND_TRUTH_PATH: &str = "/admin/ground-truth";

/// Builds the server on `listener`. Must run inside a Tokio runtime that has no actix
/// `System`, so that its workers get threads and runtimes of their own.
pub(crate) fn build(
    listener: TcpListener,
    workers: usize,
    shared: Arc<Shared>,
) -> std::io::Result<(Server, ServerHandle)> {
    let limits_guard = web::Data::new(limits::Guard::new(&shared.config.limits, "the carrier"));
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(limits_guard.clone())
            .wrap(middleware::from_fn(admit))
            .service(
                post(paths::NUMBER_ASSIGNMENTS).route(web::post().to(webhook::number_assignments)),
            )
            .service(
                get(format!(
                    "{}{{telephoneNumber}}",
                    paths::CARRIER_NUMBER_PREFIX
                ))
                .route(get_or_head().to(hooks::number_view)),
            )
            .service(post(paths::CALL_LEGS).route(web::post().to(hooks::call_legs)))
            .service(get(GROUND_TRUTH_PATH.to_owned()).route(get_or_head().to(hooks::ground_truth)))
            .default_service(web::to(problem::not_found))
    })
    // Every connection gets a slot to count it against its client address's cap.
    .on_connect(limits::on_connect)
    .workers(workers)
    // The library never takes over the process's signals; `serve` handles Ctrl-C itself.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok((server, handle))
}

/// A resource whose one method is POST: any other gets 405 with `Allow: POST`.
fn post(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        problem::method_not_allowed(&req, "POST")
    }))
}

/// A resource read with GET (and HEAD, answered as GET without the body): any other method
/// gets 405 with `Allow: GET, HEAD`.
fn get(path: String) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        problem::method_not_allowed(&req, "GET, HEAD")
    }))
}

/// The route of GET and HEAD: actix-web leaves the body out of a HEAD answer, keeping its
/// length.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The connection cap, before routing: a connection past its address's cap is answered `503`
/// and closed, whatever it asked for.
async fn admit<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<impl MessageBody + use<B>>, actix_web::Error> {
    let refused = req
        .app_data::<web::Data<limits::Guard>>()
        .and_then(|guard| guard.admit(req.request()).err());
    match refused {
        Some(refused) => Ok(req
            .into_response(limits::respond(&refused))
            .map_into_right_body()),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}
