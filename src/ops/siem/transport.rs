//! The connection to the syslog receiver: TCP, TLS (rustls, verified against the system's
//! roots plus `audit.syslog_ca_file`) or UDP, with blocking I/O on the stream's own thread.
//!
//! TCP has no application-level acknowledgement, so what the receiver has "accepted" is read
//! from the connection itself: every byte written has been acknowledged by the receiver's TCP
//! (the socket's send queue is empty, `SIOCOUTQ`), and the receiver has not closed the
//! connection since (`alive`). The stream confirms an entry only when both held a while after
//! it was written (see `super::SETTLE`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::config::{SyslogTransport, SyslogUrl};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A receiver that takes no bytes for this long is taken for gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Connection {
    Tcp(Counted),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Counted>>),
    Udp(UdpSocket),
}

/// A TCP stream that counts the bytes handed to the kernel, TLS's own included: with the
/// socket's send queue, that tells how far the receiver's TCP has acknowledged.
pub struct Counted {
    socket: TcpStream,
    written: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.socket.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

fn tcp(addresses: &[SocketAddr]) -> std::io::Result<Counted> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(socket) => {
                socket.set_nodelay(true)?;
                socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
                socket.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                return Ok(Counted { socket, written: 0 });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address")))
}

impl Connection {
    /// Connects (and for TLS, completes the handshake, so that a certificate the roots do not
    /// vouch for is reported here).
    pub fn open(
        url: &SyslogUrl,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> std::io::Result<Connection> {
        let addresses: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
        match url.transport {
            SyslogTransport::Tcp => Ok(Connection::Tcp(tcp(&addresses)?)),
            SyslogTransport::Tls => {
                let config = tls
                    .cloned()
                    .ok_or_else(|| std::io::Error::other("no TLS settings"))?;
                let name = ServerName::try_from(url.host.clone())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let client =
                    rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(client, tcp(&addresses)?);
                while stream.conn.is_handshaking() {
                    stream.conn.complete_io(&mut stream.sock)?;
                }
                Ok(Connection::Tls(Box::new(stream)))
            }
            SyslogTransport::Udp => {
                let address = addresses
                    .first()
                    .ok_or_else(|| std::io::Error::other("the name resolves to no address"))?;
                let local: SocketAddr = if address.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(address)?;
                Ok(Connection::Udp(socket))
            }
        }
    }

    /// Whether a write is confirmed by the receiver's TCP (false for UDP: nothing confirms).
    pub fn confirms(&self) -> bool {
        !matches!(self, Connection::Udp(_))
    }

    /// Sends framed messages (TCP, TLS) or one datagram (UDP).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.write_all(bytes),
            Connection::Tls(stream) => {
                stream.write_all(bytes)?;
                stream.flush()
            }
            Connection::Udp(socket) => socket.send(bytes).map(|_| ()),
        }
    }

    /// Bytes handed to the kernel on this connection so far (UDP: none counted).
    pub fn written(&self) -> u64 {
        match self {
            Connection::Tcp(stream) => stream.written,
            Connection::Tls(stream) => stream.sock.written,
            Connection::Udp(_) => 0,
        }
    }

    /// How many of the bytes `written` the receiver's TCP has acknowledged (UDP: all).
    pub fn acknowledged(&self) -> std::io::Result<u64> {
        let stream = match self {
            Connection::Tcp(stream) => stream,
            Connection::Tls(stream) => &stream.sock,
            Connection::Udp(_) => return Ok(0),
        };
        Ok(stream.written.saturating_sub(outq(&stream.socket)? as u64))
    }

    /// False once the receiver has closed the connection (or it broke): then nothing written
    /// since the last confirmation can be counted as accepted.
    pub fn alive(&mut self) -> bool {
        match self {
            Connection::Udp(_) => true,
            Connection::Tcp(Counted { socket: stream, .. }) => {
                let mut byte = [0u8; 64];
                if stream.set_nonblocking(true).is_err() {
                    return false;
                }
                // A syslog receiver sends nothing: what there is to read is the end.
                let mut alive = true;
                for _ in 0..64 {
                    match stream.read(&mut byte) {
                        Ok(0) => alive = false,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => alive = false,
                    }
                    break;
                }
                alive && stream.set_nonblocking(false).is_ok()
            }
            Connection::Tls(stream) => {
                let rustls::StreamOwned { conn, sock } = &mut **stream;
                let sock = &mut sock.socket;
                if sock.set_nonblocking(true).is_err() {
                    return false;
                }
                // What the receiver sends is TLS's own (session tickets, close_notify).
                let mut alive = true;
                for _ in 0..64 {
                    match conn.read_tls(sock) {
                        Ok(0) => alive = false,
                        Ok(_) => match conn.process_new_packets() {
                            Ok(state) if state.peer_has_closed() => alive = false,
                            Ok(state) => {
                                let mut sink = vec![0u8; state.plaintext_bytes_to_read()];
                                let _ = conn.reader().read(&mut sink);
                                continue;
                            }
                            Err(_) => alive = false,
                        },
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => alive = false,
                    }
                    break;
                }
                alive && sock.set_nonblocking(false).is_ok()
            }
        }
    }

    /// Ends a TLS session properly (close_notify); TCP and UDP just close.
    pub fn close(self) {
        if let Connection::Tls(mut stream) = self {
            stream.conn.send_close_notify();
            let _ = stream.conn.complete_io(&mut stream.sock);
        }
    }
}

/// The socket's send queue: bytes not yet acknowledged by the peer (Linux `SIOCOUTQ`).
#[allow(unsafe_code)]
fn outq(socket: &TcpStream) -> std::io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one int through the pointer, which points at a
    // live c_int; the descriptor is this open socket's.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}
