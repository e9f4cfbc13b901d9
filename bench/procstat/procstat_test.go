package procstat

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	a, err := Read(0)
	if err != nil {
		t.Fatal(err)
	}
	if a.RSS <= 0 || a.Threads <= 0 {
		t.Fatalf("self sample %+v", a)
	}
	// burn some CPU and check it shows
	end := time.Now().Add(100 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	b, _ := Read(os.Getpid())
	if b.CPU <= a.CPU {
		t.Fatalf("CPU did not advance: %v -> %v (%d)", a.CPU, b.CPU, x)
	}
	if p := CPUPercent(a, b); p <= 0 || p > 100*float64(200) {
		t.Fatalf("CPUPercent %v", p)
	}
}

func TestFindListener(t *testing.T) {
	// A listener in a child process (FindListener skips its own process).
	cmd := exec.Command("python3", "-c", "import socket,time,sys\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen();print(s.getsockname()[1],flush=True);time.sleep(20)")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("python3 not available: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := FindListener(port)
	if err != nil {
		t.Fatal(err)
	}
	if pid != cmd.Process.Pid {
		t.Fatalf("FindListener = %d, want %d", pid, cmd.Process.Pid)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	if _, err := FindListener(l.Addr().(*net.TCPAddr).Port); err == nil {
		t.Fatal("own listener should not be found")
	}
}

func TestSamplerWindow(t *testing.T) {
	s, err := NewSampler(0, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(120 * time.Millisecond)
	s.Stop()
	w := s.Window(start.Add(-time.Second), time.Now())
	if w.RSSMax <= 0 || w.RSSMin > w.RSSMax {
		t.Fatalf("window %+v", w)
	}
	if n := len(s.Samples()); n < 3 {
		t.Fatalf("%d samples", n)
	}
}

func TestReadSystem(t *testing.T) {
	a, err := Read(System)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(end) {
	}
	b, _ := Read(System)
	p := CPUPercent(a, b)
	if p < 50 || p > 100*float64(runtime.NumCPU())+20 {
		t.Fatalf("machine busy %.0f%% while this test spins one core", p)
	}
}
