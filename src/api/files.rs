//! Shared files: the backend's upload for a user (API key), a room
//! member's upload to a study room (the member's JWT), and a recipient's
//! download (the recipient's JWT) with single byte ranges. Anyone who is
//! not a recipient gets 404, never 403: a file id tells nothing.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::Value;

use super::error::ApiError;
use super::path_ids::PathIds;
use super::upload::{self, Staged};
use super::user_budget::UserBudget;
use crate::files::{ascii_name, parse_range, valid_file_id, Ranged, SharedFile};
use crate::hub::Hub;
use crate::rooms::valid_room;

/// The upload's answer: 201 `{ fileId, name, size, contentType, sha256 }`.
fn created(file: &SharedFile) -> (StatusCode, Json<Value>) {
    let mut v = serde_json::to_value(file).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("room");
    }
    (StatusCode::CREATED, Json(v))
}

/// The body's declared length, if any.
fn declared(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn staged(
    hub: &Hub,
    multipart: &mut Multipart,
    headers: &HeaderMap,
) -> Result<Staged, ApiError> {
    let config = hub.config();
    upload::receive(
        multipart,
        declared(headers),
        &hub.files_staging(),
        &config.files,
        config.http.body_timeout,
    )
    .await
}

/// Refuses an upload before its body was read: the body is read and
/// thrown away first (up to the size limit), so the client reads `e`.
async fn refuse_unread(hub: &Hub, multipart: &mut Multipart, e: ApiError) -> ApiError {
    let config = hub.config();
    upload::discard(multipart, config.files.max_size, config.http.body_timeout).await;
    e
}

/// `POST /api/v1/users/{userId}/files` (API key): a file for one user.
pub async fn to_user(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut multipart = upload::multipart(multipart)?;
    let staged = staged(&hub, &mut multipart, &headers).await?;
    let file = hub.share_file_with_user(&user, &staged.received).await?;
    drop(staged);
    Ok(created(&file))
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid token is required as Bearer",
    )
}

/// The user of the JWT presented as Bearer, counted against that user's
/// budget.
async fn bearer_user(
    hub: &Hub,
    headers: &HeaderMap,
    budget: &UserBudget,
) -> Result<String, ApiError> {
    let token = super::presented(headers).ok_or_else(unauthorized)?;
    let identity = hub.bearer(token).await.map_err(|_| unauthorized())?;
    budget.take(&identity.user_id)?;
    Ok(identity.user_id.to_string())
}

/// `POST /api/v1/rooms/{room}/files` (a member's JWT): a file for the
/// room's members. The token and the membership are checked before a byte
/// of the body is read.
pub async fn to_room(
    State(hub): State<Arc<Hub>>,
    PathIds(room): PathIds<String>,
    headers: HeaderMap,
    Extension(budget): Extension<UserBudget>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut multipart = upload::multipart(multipart)?;
    let user = match bearer_user(&hub, &headers, &budget).await {
        Ok(user) => user,
        Err(e) => return Err(refuse_unread(&hub, &mut multipart, e).await),
    };
    if !valid_room(&room) {
        let e = ApiError::bad_request("invalid_room", "not a room name");
        return Err(refuse_unread(&hub, &mut multipart, e).await);
    }
    if !hub.in_room(&room, &user).await {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a member of the room (joined now) shares files in it",
        );
        return Err(refuse_unread(&hub, &mut multipart, e).await);
    }
    let staged = staged(&hub, &mut multipart, &headers).await?;
    let file = hub
        .share_file_in_room(&user, &room, &staged.received)
        .await?;
    drop(staged);
    let (status, Json(mut v)) = created(&file);
    v["room"] = room.into();
    Ok((status, Json(v)))
}

fn not_found() -> ApiError {
    ApiError::not_found("no such file")
}

/// The `Content-Disposition` of a download: always an attachment, the
/// name safe already, in ASCII and (RFC 5987) in UTF-8.
fn disposition(name: &str) -> HeaderValue {
    let utf8: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let value = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_name(name),
        utf8.replace('+', "%20")
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /api/v1/files/{fileId}` (a recipient's JWT): the file, whole or
/// one byte range.
pub async fn download(
    State(hub): State<Arc<Hub>>,
    PathIds(file_id): PathIds<String>,
    headers: HeaderMap,
    Extension(budget): Extension<UserBudget>,
) -> Result<Response, ApiError> {
    let user = bearer_user(&hub, &headers, &budget).await?;
    if !valid_file_id(&file_id) {
        return Err(not_found());
    }
    let file = hub.file_for(&file_id, &user).await?.ok_or_else(not_found)?;
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, range) = match parse_range(asked, file.size) {
        Ranged::Whole => (StatusCode::OK, 0..file.size),
        Ranged::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Ranged::Unsatisfiable => {
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {} bytes", file.size),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
    };
    let content = hub.download(&file, &user, range.clone()).await?;
    let mut res = Response::new(HttpBody::from_stream(content));
    *res.status_mut() = status;
    let h = res.headers_mut();
    let text = |s: String| HeaderValue::from_str(&s).expect("ASCII");
    h.insert(
        header::CONTENT_LENGTH,
        text((range.end - range.start).to_string()),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_DISPOSITION, disposition(&file.name));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ETAG, text(format!("\"{}\"", file.sha256)));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            text(format!(
                "bytes {}-{}/{}",
                range.start,
                range.end - 1,
                file.size
            )),
        );
    }
    Ok(res)
}
