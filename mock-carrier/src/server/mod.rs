//! The carrier API as an actix-web server: routes, and starting it on a runtime of its own.

mod hooks;
mod problem;
mod webhook;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
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
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .service(
                web::resource(paths::NUMBER_ASSIGNMENTS)
                    .route(web::post().to(webhook::number_assignments))
                    .default_service(web::to(problem::method_not_allowed)),
            )
            .service(
                web::resource(format!(
                    "{}{{telephoneNumber}}",
                    paths::CARRIER_NUMBER_PREFIX
                ))
                .route(web::get().to(hooks::number_view))
                .default_service(web::to(problem::method_not_allowed)),
            )
            .service(
                web::resource(paths::CALL_LEGS)
                    .route(web::post().to(hooks::call_legs))
                    .default_service(web::to(problem::method_not_allowed)),
            )
            .service(
                web::resource(GROUND_TRUTH_PATH)
                    .route(web::get().to(hooks::ground_truth))
                    .default_service(web::to(problem::method_not_allowed)),
            )
            .default_service(web::to(problem::not_found))
    })
    .workers(workers)
    // The library never takes over the process's signals; `serve` handles Ctrl-C itself.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok((server, handle))
}
