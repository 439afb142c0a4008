//! Serving: `run(listener, app, shutdown)` over an already bound listener, so tests bind port 0,
//! and the shutdown signal (SIGTERM or Ctrl-C).

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Serve `app` on `listener` until `shutdown` completes; requests in flight finish first.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// A future that completes on SIGTERM or Ctrl-C. The handlers are installed by this call, not
/// when the future is first polled, so a signal sent right after the ready line (by a
/// supervisor or a test) stops the server cleanly instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let waits = {
        use tokio::signal::unix::{SignalKind, signal};
        let wait = |kind: SignalKind| {
            let installed = signal(kind);
            async move {
                match installed {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        };
        (wait(SignalKind::terminate()), wait(SignalKind::interrupt()))
    };
    #[cfg(not(unix))]
    let waits = (
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        },
        std::future::pending::<()>(),
    );
    async move {
        let (term, ctrl_c) = waits;
        tokio::select! {
            _ = term => {},
            _ = ctrl_c => {},
        }
        tracing::info!("shutting down");
    }
}
