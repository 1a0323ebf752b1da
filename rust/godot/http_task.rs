//! `HTTPTask`: a handle to one request, to await or cancel.

use godot::prelude::*;

use super::http_response::HttpResponse;
use crate::core::http::CancelHandle;

/// One request made with [method HTTPPool.request]. Await [signal completed] to get its
/// [HTTPResponse]; it is emitted exactly once, on the main thread, whatever the outcome.
/// [code]var res: HTTPResponse = await pool.fetch("/me").completed[/code]
/// When awaiting several tasks one after another, a later one may already have finished:
/// a signal is not replayed, so read [member response] when [method is_done] is true.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPTask)]
pub struct HttpTask {
    /// The request's id, unique within its pool; also passed to [signal HTTPPool.request_completed].
    #[var(no_set)]
    id: i64,
    /// The response once [signal completed] was emitted, null before.
    #[var(no_set)]
    response: Option<Gd<HttpResponse>>,
    cancel_handle: CancelHandle,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpTask {
    /// Emitted once when the request ends, with its [HTTPResponse].
    #[signal]
    pub fn completed(response: Gd<HttpResponse>);

    /// Cancels the request. It still ends through [signal completed], with
    /// [constant HTTPResponse.ERR_CANCELLED], unless it had already finished. Never blocks.
    #[func]
    pub fn cancel(&self) {
        self.cancel_handle.cancel();
    }

    /// True once [signal completed] has been emitted.
    #[func]
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }
}

impl HttpTask {
    /// Creates the handle for request `id`.
    pub fn create(id: u64, cancel_handle: CancelHandle) -> Gd<HttpTask> {
        Gd::from_init_fn(|base| HttpTask {
            id: id as i64,
            response: None,
            cancel_handle,
            base,
        })
    }

    /// Records the response; the caller emits [signal completed] once no borrow is held.
    pub fn set_response(&mut self, response: Gd<HttpResponse>) {
        self.response = Some(response);
    }
}
