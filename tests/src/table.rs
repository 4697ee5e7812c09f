//! The scenario-table harness shared by the test files: the [`scenarios!`](crate::scenarios)
//! macro that expands one `#[test]` per scenario and runtime, a gateway handle that shuts
//! down when dropped, and the assertions every table uses.

use std::net::SocketAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;

use crate::client::Response;
use switchback_pump::Running;

use crate::gateway::{load_config, start_on, GatewayOptions, Runtime};
use crate::mock_upstream::MockUpstream;

#[doc(hidden)]
pub use paste as __paste;

/// Expands a scenario table: one `#[test]` per scenario and runtime built in (features
/// `smol`, `tokio`), named `smol_<scenario>` and `tokio_<scenario>`, each calling
/// `<scenario>::<Runtime>()`. An entry may carry extra attributes for one runtime, e.g.
/// `name smol(ignore = "why")`.
#[macro_export]
macro_rules! scenarios {
    ($( $name:ident $( smol($($sattr:tt)*) )? $( tokio($($tattr:tt)*) )? ),* $(,)?) => {
        $crate::table::__paste::paste! {
            $(
                #[cfg(feature = "smol")]
                #[test]
                $( #[$($sattr)*] )?
                fn [<smol_ $name>]() {
                    let _turn = $crate::table::shared_turn();
                    $name::<$crate::gateway::Smol>();
                }

                #[cfg(feature = "tokio")]
                #[test]
                $( #[$($tattr)*] )?
                fn [<tokio_ $name>]() {
                    let _turn = $crate::table::shared_turn();
                    $name::<$crate::gateway::Tokio>();
                }
            )*
        }
    };
}

/// [`scenarios!`] for scenarios that load the machine on purpose (storms: many clients
/// for seconds): each runs alone, while no other scenario of its test binary runs, so
/// the load never slows another scenario past its timeouts.
#[macro_export]
macro_rules! scenarios_alone {
    ($( $name:ident ),* $(,)?) => {
        $crate::table::__paste::paste! {
            $(
                #[cfg(feature = "smol")]
                #[test]
                fn [<smol_ $name>]() {
                    let _turn = $crate::table::exclusive_turn();
                    $name::<$crate::gateway::Smol>();
                }

                #[cfg(feature = "tokio")]
                #[test]
                fn [<tokio_ $name>]() {
                    let _turn = $crate::table::exclusive_turn();
                    $name::<$crate::gateway::Tokio>();
                }
            )*
        }
    };
}

/// Scenarios of one test binary share this: ordinary ones read, [`scenarios_alone!`]
/// ones write.
static TURNS: RwLock<()> = RwLock::new(());

/// A turn beside the other ordinary scenarios; call through [`scenarios!`].
pub fn shared_turn() -> RwLockReadGuard<'static, ()> {
    // A scenario that panicked poisons the lock; the next ones still run.
    TURNS.read().unwrap_or_else(PoisonError::into_inner)
}

/// A turn with no other scenario running; call through [`scenarios_alone!`].
pub fn exclusive_turn() -> RwLockWriteGuard<'static, ()> {
    TURNS.write().unwrap_or_else(PoisonError::into_inner)
}

/// A gateway for one scenario; shut down when dropped.
pub struct Gw {
    running: Option<Running>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for Gw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gw").field("addr", &self.addr).finish()
    }
}

impl Gw {
    /// Stops the gateway gracefully (spec §8) and returns once it has stopped: in-flight
    /// requests finish within the drain timeout, streams still open then end with the
    /// in-band error event.
    pub fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

/// Starts `yaml` with `${PRIMARY}`, `${SECONDARY}`, `${TERTIARY}` set to the mocks' ports.
pub fn start<R: Runtime>(yaml: &str, mocks: &[&MockUpstream]) -> Gw {
    let ports: Vec<u16> = mocks.iter().map(|m| m.port()).collect();
    start_ports::<R>(yaml, &ports, &GatewayOptions::default())
}

/// Starts `yaml` with `${PRIMARY}`, `${SECONDARY}`, `${TERTIARY}` set to `ports`.
pub fn start_ports<R: Runtime>(yaml: &str, ports: &[u16], options: &GatewayOptions) -> Gw {
    let vars: Vec<(&str, String)> = ["PRIMARY", "SECONDARY", "TERTIARY"]
        .into_iter()
        .zip(ports.iter().map(u16::to_string))
        .collect();
    let config = load_config(yaml, &vars);
    let running = start_on::<R>(config, options);
    let addr = running.local_addrs()[0];
    Gw {
        running: Some(running),
        addr,
    }
}

/// The response has `status` (the body is shown otherwise).
///
/// # Panics
/// If it does not.
pub fn assert_status(r: &Response, status: u16) {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text());
}

/// Header `name` has `value`.
///
/// # Panics
/// If it does not.
pub fn assert_header(r: &Response, name: &str, value: &str) {
    assert_eq!(
        r.header(name),
        Some(value),
        "header {name}; all: {:?}",
        r.headers
    );
}

/// The `error` object of a gateway error body.
///
/// # Panics
/// If the body is not an OpenAI error body.
pub fn error_of(r: &Response) -> Value {
    let v = r.json();
    assert!(
        v["error"].is_object(),
        "not an OpenAI error body: {}",
        r.text()
    );
    v["error"].clone()
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The start of every scenario config: one model listener with a generous deadline, then
/// the `model_providers` key (entries follow, indented by two).
pub const HEAD: &str = "version: v0.3.0
listeners:
  - type: model
    name: model_listener
    port: 12000
    timeout: 10s
model_providers:
";

/// `text` with every line indented by `by` spaces.
pub fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}
