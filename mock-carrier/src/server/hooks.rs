//! The certification hooks (PROTOCOL.md 2.2, 2.3) and the admin endpoint that serves the
//! ground truth.

use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use oc_protocol::validate::is_e164;
use oc_protocol::{
    CallLegBatch, CallLegsAccepted, FieldError, Problem, ProblemKind, Validate, body,
};

use super::limits::{self, Guard};
use super::problem::respond;
use crate::shared::Shared;

/// `GET /oc/v1/numbers/{telephoneNumber}`: the carrier's view of one number.
pub(crate) async fn number_view(number: Path<String>, shared: Data<Shared>) -> HttpResponse {
    let number = number.into_inner();
    if !is_e164(&number) {
        return respond(
            &Problem::new(
                ProblemKind::Validation,
                "the path must end with an E.164 number",
            )
            .with_errors(vec![FieldError::at_parameter(
                "telephoneNumber",
                "must be E.164: + then 8 to 15 digits, the first not 0",
            )]),
        );
    }
    match shared.lock_numbers().view(&number) {
        Some(view) => HttpResponse::Ok().json(view),
        None => respond(&Problem::new(
            ProblemKind::NotFound,
            format!("the carrier has never heard of {number}"),
        )),
    }
}

/// `POST /oc/v1/test/call-legs`: what the carrier's switches recorded; `202 {"accepted": n}`.
pub(crate) async fn call_legs(
    req: HttpRequest,
    payload: Payload,
    shared: Data<Shared>,
    guard: Data<Guard>,
) -> HttpResponse {
    let body = match limits::read_json_body(&guard, &req, payload).await {
        Ok(body) => body,
        Err(refused) => return limits::respond(&refused),
    };
    let batch: CallLegBatch = match body::from_slice(&body.bytes) {
        Ok(batch) => batch,
        Err(err) => return respond(&Problem::malformed(err)),
    };
    if let Err(errors) = batch.validate() {
        return respond(&Problem::validation(errors.0));
    }
    shared.ingest_legs(&batch.legs);
    let accepted = u32::try_from(batch.legs.len()).unwrap_or(u32::MAX);
    HttpResponse::Accepted().json(CallLegsAccepted { accepted })
}

/// `GET /admin/ground-truth`: the ground truth as it stands.
pub(crate) async fn ground_truth(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.ground_truth())
}
