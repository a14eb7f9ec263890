//! The one error type of the API and how each case maps to an HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nightjar_store::StoreError;
use thiserror::Error;

/// Why a request failed.
///
/// Caller mistakes are 4xx with a message that says what is wrong and what is accepted; store
/// failures are 500 with the details logged, never returned.
#[derive(Debug, Error)]
pub enum ApiError {
    /// A bad parameter: the message names it and says what is accepted.
    #[error("{0}")]
    BadRequest(String),
    /// An unknown object or alert (SkyPortal's `/alerts/{candid}`).
    #[error("{0}")]
    NotFound(String),
    /// A bearer token is configured and the request had none or another one.
    #[error("a bearer token is required: send the header `Authorization: Bearer <token>`")]
    Unauthorized,
    /// The request could not be read (body too large, bad path encoding), with axum's status.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// A bug in nightjar (writing an in-memory CSV failed).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Rejected { status, .. } => *status,
            ApiError::Store(StoreError::InvalidArgument(_)) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    /// `{"status": "error", "message": "..."}`; a 500 says only that it failed (details go to the log).
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error: the store failed; the details are in the server log".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(serde_json::json!({"status": "error", "message": message}))).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
