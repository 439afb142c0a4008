//! Hostile fixture (E9, E10, E12): an authenticator that tries to reach what the sandbox must
//! not give it (files, the folder listing of `/`, environment variables, arguments, preopened
//! folders, TCP to loopback port config `port`, UDP, DNS) and always refuses the sign-in with
//! what it got, as `snoop: passwd=...; root=...; ...`, so the test can check that nothing was
//! reachable. Each entry is `denied(<error>)` or `GOT(<what>)`.

use crm_users_guest::{Authenticator, Credentials, Failure, Outcome, export_authenticator, host};
use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};

fn got(what: impl std::fmt::Display) -> String {
    format!("GOT({what})")
}

fn denied(error: impl std::fmt::Debug) -> String {
    format!("denied({error:?})")
}

fn files() -> Vec<String> {
    let passwd = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => got(format!("{} bytes", text.len())),
        Err(e) => denied(e.kind()),
    };
    let up = match std::fs::read("../../../../etc/passwd") {
        Ok(bytes) => got(format!("{} bytes", bytes.len())),
        Err(e) => denied(e.kind()),
    };
    let root = match std::fs::read_dir("/") {
        Ok(entries) => got(format!("{} entries", entries.count())),
        Err(e) => denied(e.kind()),
    };
    let preopens = wasi::filesystem::preopens::get_directories();
    let preopens = if preopens.is_empty() {
        denied("none")
    } else {
        got(preopens.iter().map(|(_, path)| path.as_str()).collect::<Vec<_>>().join(","))
    };
    vec![format!("passwd={passwd}"), format!("traversal={up}"), format!("root={root}"), format!("preopens={preopens}")]
}

fn environment() -> Vec<String> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let env = if env.is_empty() { denied("none") } else { got(format!("{} vars", env.len())) };
    let args: Vec<String> = std::env::args().collect();
    let args = if args.is_empty() { denied("none") } else { got(args.join(" ")) };
    vec![format!("env={env}"), format!("args={args}")]
}

fn tcp(port: u16) -> String {
    let network = wasi::sockets::instance_network::instance_network();
    let socket = match wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(socket) => socket,
        Err(e) => return denied(e),
    };
    let address = IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: (127, 0, 0, 1) });
    if let Err(e) = socket.start_connect(&network, address) {
        return denied(e);
    }
    socket.subscribe().block();
    match socket.finish_connect() {
        Ok(_) => got(format!("connected to 127.0.0.1:{port}")),
        Err(e) => denied(e),
    }
}

fn sockets(port: u16) -> Vec<String> {
    let std_tcp = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => got("std connected"),
        Err(e) => denied(e.kind()),
    };
    let udp = match std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.send_to(b"x", ("127.0.0.1", port))) {
        Ok(n) => got(format!("sent {n} bytes")),
        Err(e) => denied(e.kind()),
    };
    let network = wasi::sockets::instance_network::instance_network();
    let dns = match wasi::sockets::ip_name_lookup::resolve_addresses(&network, "localhost") {
        Ok(stream) => {
            stream.subscribe().block();
            match stream.resolve_next_address() {
                Ok(Some(address)) => got(format!("{address:?}")),
                Ok(None) => denied("no address"),
                Err(e) => denied(e),
            }
        }
        Err(e) => denied(e),
    };
    vec![format!("tcp={}", tcp(port)), format!("std_tcp={std_tcp}"), format!("udp={udp}"), format!("dns={dns}")]
}

struct Snoop;

impl Authenticator for Snoop {
    fn authenticate(_credentials: Credentials) -> Result<Outcome, Failure> {
        let port = host::config("port").and_then(|p| p.parse().ok()).unwrap_or(1);
        let mut report = files();
        report.extend(environment());
        report.extend(sockets(port));
        Err(Failure::other(format!("snoop: {}", report.join("; "))))
    }
}

export_authenticator!(Snoop);
