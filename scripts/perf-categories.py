#!/usr/bin/env python3
# Groups a flat `perf report --no-children --sort dso,sym` by where the time goes (used by
# scripts/profile-saves.sh). Set-up work (Argon2 while enrolling the benchmark users) is left out.
import re,collections,sys
cats=collections.OrderedDict([
 ("set-up", r"argon2|blake2|zxcvbn"),
 ("kernel: disk I/O (fsync, virtio doorbell)", r"\[k\].*(fsync|ext4|jbd2|blk|bio_|iowrite|nvme|virtio|submit_bio|writeback|xfs|overlay)"),
 ("kernel: loopback TCP", r"\[k\].*(tcp|ip_|skb|sock|net_|__dev_queue|loopback|inet|sk_|softirq)"),
 ("kernel: context switches, futex wake-ups", r"\[k\].*(spin_unlock_irqrestore|finish_task_switch|schedule|futex|wake|switch|irqentry|sched)"),
 ("kernel: other (page faults, syscalls)", r"\[k\]"),
 ("TLS (rustls, ring AES-GCM)", r"rustls|ring_core|ring::|aes_hw|aes_nohw|gcm_|GFp|chacha|ecp_nistz|aesni"),
 ("HTTP (hyper, h2, reqwest, axum)", r"hyper|h2::|reqwest|http::|httparse|tower|axum|bytes::"),
 ("sled", r"sled::|crossbeam|crc32"),
 ("kluis-core (client: seal, manifest MAC and verify)", r"kluis_core|aes_gcm|aes::|hmac|sha2::|hkdf|minicbor|ghash|polyval"),
 ("kluis-server (incl. AppState clone/drop per request)", r"kluis_server"),
 ("allocator, memcpy", r"malloc|free|memmove|memcpy|memset|_int_|realloc|alloc::|memcmp|unlink_chunk"),
 ("tokio runtime, threads", r"tokio|pthread|syscall|clone3|__lll|futex"),
])
tot=collections.Counter()
for line in open(sys.argv[1]):
    m=re.match(r"\s*([\d.]+)%\s+(.*)",line)
    if not m: continue
    pct=float(m.group(1)); rest=m.group(2)
    for c,rx in cats.items():
        if re.search(rx,rest): tot[c]+=pct; break
    else: tot["other"]+=pct
setup=tot.pop("set-up",0)
run=sum(tot.values())
print(f"(set-up, enrolling the users: {setup:.0f}% of samples, left out)")
for c,v in sorted(tot.items(),key=lambda x:-x[1]): print(f"  {100*v/run:5.1f}%  {c}")
