# Shared by the benchmark scripts (source it; it defines functions only).

# make_images WORK COUNT SIZE_MIB: WORK/image0 … image(COUNT-1), each the project's PVH test
# kernel (images/) followed by random bytes up to SIZE_MIB MiB, so image inspection passes
# and hashing sees incompressible data; WORK/launch.json, COUNT PVH domains with one kernel
# each; the page cache warmed. Sets FILES to the image paths.
make_images() {
    local work=$1 count=$2 size_mib=$3 i kernel_size
    python3 - "$work" "$count" <<'PY'
import json, sys
work, count = sys.argv[1], int(sys.argv[2])
domain = lambda i: {"name": f"guest{i}", "type": "pvh", "is64Bit": True, "memoryKiB": 262144, "vcpus": 1,
                    "capabilities": 0, "isBootDomain": False, "startOnBoot": True, "devices": [],
                    "modules": [{"kind": "kernel", "path": f"image{i}", "bootargs": "console=hvc0"}]}
json.dump({"domains": [domain(i) for i in range(count)], "cpupools": [], "eventChannels": [],
           "sharedMemory": [], "staticMode": False}, open(f"{work}/launch.json", "w"))
PY
    make -s -C images OUT="$work/guests"
    kernel_size=$(stat -c %s "$work/guests/pvh-kernel.elf")
    FILES=()
    for i in $(seq 0 $((count - 1))); do
        { cat "$work/guests/pvh-kernel.elf"; head -c $(((size_mib << 20) - kernel_size)) /dev/urandom; } >"$work/image$i"
        FILES+=("$work/image$i")
    done
    cat "${FILES[@]}" >/dev/null
}

# fresh_swtpm STATE-DIR: a fresh swtpm on a free port; sets SWTPM_PID and TCTI. The machine
# is shared: a port someone else's swtpm holds would answer the wait below, and the run would
# talk to that TPM, so taken ports are skipped and a swtpm that exited (its bind failed) is
# replaced on another port.
fresh_swtpm() {
    local port attempt
    for attempt in $(seq 20); do
        port=$(((RANDOM % 20000 + 20000) & ~1))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null && continue
        rm -rf "$1"; mkdir -p "$1"
        swtpm socket --tpm2 --tpmstate dir="$1" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
            --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
        SWTPM_PID=$!
        TCTI="swtpm:host=127.0.0.1,port=$port"
        for _ in $(seq 50); do
            kill -0 "$SWTPM_PID" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                sleep 0.1
                kill -0 "$SWTPM_PID" 2>/dev/null && return 0
                break
            fi
            sleep 0.1
        done
        stop_swtpm
    done
    echo "fresh_swtpm: no swtpm started after 20 ports (is swtpm installed? apt-get install swtpm)" >&2
    return 1
}

stop_swtpm() {
    [[ -n "${SWTPM_PID:-}" ]] && { kill -9 "$SWTPM_PID" 2>/dev/null || true; wait "$SWTPM_PID" 2>/dev/null || true; }
    SWTPM_PID=""
}

# two_cpus: "A,B", the first two CPUs this shell may run on (for taskset), or nothing.
two_cpus() {
    python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(",".join(map(str, c[:2])) if len(c) >= 2 else "")'
}

# Load while a benchmark runs: other engineers share this machine.
load_average() { cut -d' ' -f1-3 /proc/loadavg; }
