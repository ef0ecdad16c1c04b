//! Live capture on Linux with an AF_PACKET TPACKET_V3 ring: the kernel
//! fills blocks of packets in shared memory; we read them in place and
//! hand each block back. No libpcap. Kernel drops are counted.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Settings;
use crate::pipeline::{Dispatcher, FileRegistry, PacketStore};
use crate::stats::DropReason;

const BLOCK_SIZE: u32 = 1 << 20;
const BLOCK_COUNT: u32 = 32;
const FRAME_SIZE: u32 = 2048;
const TP_STATUS_USER: u32 = 1;
const TPACKET_V3: libc::c_int = 2;

#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

#[repr(C)]
struct TpacketStatsV3 {
    tp_packets: u32,
    tp_drops: u32,
    tp_freeze_q_cnt: u32,
}

/// One interface's ring.
struct Ring {
    fd: libc::c_int,
    map: *mut u8,
    map_len: usize,
    block: u32,
    file_no: u32,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: map/map_len come from a successful mmap, fd from socket.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
            libc::close(self.fd);
        }
    }
}

fn os_err(what: &str, name: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{name}: {what}: {e}"))
}

impl Ring {
    fn open(name: &str, snap_len: u32, file_no: u32) -> io::Result<Ring> {
        let cname = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
        // SAFETY: plain libc calls with valid arguments; results checked.
        unsafe {
            let ifindex = libc::if_nametoindex(cname.as_ptr());
            if ifindex == 0 {
                return Err(os_err("no such interface", name));
            }
            let proto = (libc::ETH_P_ALL as u16).to_be();
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(proto));
            if fd < 0 {
                return Err(os_err(
                    "socket(AF_PACKET) (needs root or CAP_NET_RAW)",
                    name,
                ));
            }
            let version: libc::c_int = TPACKET_V3;
            if libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_VERSION,
                (&version as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            ) != 0
            {
                libc::close(fd);
                return Err(os_err("PACKET_VERSION", name));
            }
            let frame = FRAME_SIZE.max(snap_len.next_power_of_two().min(BLOCK_SIZE));
            let req = TpacketReq3 {
                tp_block_size: BLOCK_SIZE,
                tp_block_nr: BLOCK_COUNT,
                tp_frame_size: frame,
                tp_frame_nr: BLOCK_SIZE / frame * BLOCK_COUNT,
                tp_retire_blk_tov: 50,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            if libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                (&req as *const TpacketReq3).cast(),
                std::mem::size_of::<TpacketReq3>() as u32,
            ) != 0
            {
                libc::close(fd);
                return Err(os_err("PACKET_RX_RING", name));
            }
            let map_len = (BLOCK_SIZE * BLOCK_COUNT) as usize;
            let map = libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if map == libc::MAP_FAILED {
                libc::close(fd);
                return Err(os_err("mmap", name));
            }
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            if libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                libc::munmap(map, map_len);
                libc::close(fd);
                return Err(os_err("bind", name));
            }
            Ok(Ring {
                fd,
                map: map.cast(),
                map_len,
                block: 0,
                file_no,
            })
        }
    }

    /// Handles every packet of the next ready block; false when none is
    /// ready.
    fn drain_block(
        &mut self,
        d: &mut Dispatcher,
        pos: &mut u64,
        mut store: Option<&mut (dyn PacketStore + 'static)>,
    ) -> bool {
        let base = (self.block * BLOCK_SIZE) as usize;
        // SAFETY: the block lies inside the mapping; the kernel hands it
        // to us when block_status has TP_STATUS_USER, and we only read the
        // packets it describes, bounds-checked against the block.
        unsafe {
            let block = self.map.add(base);
            let status_ptr = block.add(8) as *mut u32;
            let status = std::ptr::read_volatile(status_ptr);
            if status & TP_STATUS_USER == 0 {
                return false;
            }
            std::sync::atomic::fence(Ordering::Acquire);
            let num = std::ptr::read_unaligned(block.add(12) as *const u32);
            let mut off = std::ptr::read_unaligned(block.add(16) as *const u32) as usize;
            for _ in 0..num {
                if off + 32 > BLOCK_SIZE as usize {
                    break;
                }
                let h = block.add(off);
                let next = std::ptr::read_unaligned(h as *const u32) as usize;
                let sec = std::ptr::read_unaligned(h.add(4) as *const u32);
                let nsec = std::ptr::read_unaligned(h.add(8) as *const u32);
                let snaplen = std::ptr::read_unaligned(h.add(12) as *const u32) as usize;
                let len = std::ptr::read_unaligned(h.add(16) as *const u32);
                let mac = std::ptr::read_unaligned(h.add(24) as *const u16) as usize;
                if off + mac + snaplen <= BLOCK_SIZE as usize {
                    let data = std::slice::from_raw_parts(h.add(mac), snaplen);
                    let ts_us = i64::from(sec) * 1_000_000 + i64::from(nsec / 1000);
                    let (file, at) = match store.as_deref_mut() {
                        Some(s) => s.write(ts_us, len, data).unwrap_or((self.file_no, *pos)),
                        None => (self.file_no, *pos),
                    };
                    d.packet(pcapio::linktype::ETHERNET, data, len, ts_us, at, file);
                    *pos += 16 + snaplen as u64;
                }
                if next == 0 {
                    break;
                }
                off += next;
            }
            std::sync::atomic::fence(Ordering::Release);
            std::ptr::write_volatile(status_ptr, 0);
        }
        self.block = (self.block + 1) % BLOCK_COUNT;
        true
    }

    fn kernel_drops(&self) -> u64 {
        let mut st = TpacketStatsV3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if rc == 0 { u64::from(st.tp_drops) } else { 0 }
    }
}

/// Captures on `names` until `stop` is set. Packet positions are those the
/// packets would have in a pcap file of the interface's packets.
pub(crate) fn capture(
    names: &[String],
    settings: &Settings,
    files: &FileRegistry,
    d: &mut Dispatcher,
    stop: &AtomicBool,
    mut store: Option<&mut (dyn PacketStore + 'static)>,
) -> io::Result<()> {
    d.live = true;
    let mut rings = Vec::new();
    for name in names {
        let file_no = files.register(std::path::Path::new(&format!("live:{name}")));
        rings.push((Ring::open(name, settings.snap_len, file_no)?, 24u64));
    }
    let mut fds: Vec<libc::pollfd> = rings
        .iter()
        .map(|(r, _)| libc::pollfd {
            fd: r.fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let mut any = false;
        for (ring, pos) in rings.iter_mut() {
            while ring.drain_block(d, pos, store.as_deref_mut()) {
                any = true;
            }
        }
        if !any {
            let now_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_micros() as i64);
            d.idle_tick(now_us);
            // SAFETY: fds is a valid array of pollfd.
            unsafe {
                libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100);
            }
        }
    }
    for (ring, pos) in rings.iter_mut() {
        while ring.drain_block(d, pos, store.as_deref_mut()) {}
        let drops = ring.kernel_drops();
        d.stats.drop_packets(DropReason::Kernel, drops);
        d.stats.packets_read.fetch_add(drops, Ordering::Relaxed);
    }
    Ok(())
}
