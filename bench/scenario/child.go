package scenario

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/bench/ceiling"
)

// RoleEnv tells a re-executed pondbench (or test binary) what to be.
const RoleEnv = "PONDBENCH_ROLE"

// MaybeChild turns this process into a worker or a ceiling server when the
// parent started it as one, and exits when that role ends; otherwise it
// returns false at once. Call it first thing in main and in TestMain.
func MaybeChild() bool {
	switch os.Getenv(RoleEnv) {
	case "worker":
		if err := serveWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "pondbench worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "ceiling-server":
		if err := ceiling.Main(os.Args[1:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "pondbench ceiling-server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	return false
}

// link is the parent's end of one worker: commands go out through a
// goroutine so the parent never blocks on a busy worker, events come in
// through another into the shared channel.
type link struct {
	index int
	pid   int // 0 for a worker inside this process
	cmds  chan command
	proc  *exec.Cmd
	done  chan struct{} // closed when the worker's output ended
}

func (l *link) send(c command) {
	select {
	case l.cmds <- c:
	case <-l.done:
	}
}

func startLink(index int, exe string, inProcess bool, events chan<- event) (*link, error) {
	l := &link{index: index, cmds: make(chan command, 4096), done: make(chan struct{})}
	var in io.WriteCloser
	var out io.ReadCloser
	if inProcess {
		cmdR, cmdW := io.Pipe()
		evR, evW := io.Pipe()
		go func() {
			err := serveWorker(cmdR, evW)
			if err != nil {
				_ = evW.CloseWithError(err)
			}
			_ = evW.Close()
			_ = cmdR.Close()
		}()
		in, out = cmdW, evR
	} else {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), RoleEnv+"=worker")
		cmd.Stderr = os.Stderr
		var err error
		if in, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		if out, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker %d (%s): %w", index, exe, err)
		}
		l.proc = cmd
		l.pid = cmd.Process.Pid
	}
	go func() {
		enc := json.NewEncoder(in)
		for {
			select {
			case c := <-l.cmds:
				if enc.Encode(c) != nil {
					return
				}
				if c.Op == "quit" {
					_ = in.Close()
					return
				}
			case <-l.done:
				_ = in.Close()
				return
			}
		}
	}()
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				events <- event{Ev: "error", Err: "bad event: " + err.Error(), worker: index}
				continue
			}
			ev.worker = index
			events <- ev
		}
		events <- event{Ev: "exit", worker: index}
	}()
	return l, nil
}

// wait waits for the worker to finish after quit, killing it past timeout.
func (l *link) wait(timeout time.Duration) {
	select {
	case <-l.done:
	case <-time.After(timeout):
		if l.proc != nil {
			_ = l.proc.Process.Kill()
		}
	}
	if l.proc != nil {
		_ = l.proc.Wait()
	}
}

// ceilingProc is a ceiling server started for a run.
type ceilingProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startCeiling(exe string, loops int, batch bool) (*ceilingProc, error) {
	cmd := exec.Command(exe, "--addr", "127.0.0.1:0", "--event-loops", fmt.Sprint(loops), "--stdin-eof", "--max-lifetime", "1h", fmt.Sprintf("--batch=%v", batch))
	cmd.Env = append(os.Environ(), RoleEnv+"=ceiling-server")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ceiling server: %w", err)
	}
	p := &ceilingProc{cmd: cmd, stdin: stdin}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on "); ok && !sent {
				found <- strings.TrimSpace(a)
				sent = true
				continue
			}
			fmt.Fprintln(os.Stderr, "ceiling-server:", line)
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case a, ok := <-found:
		if !ok {
			_ = cmd.Wait()
			return nil, errors.New("ceiling server exited before listening")
		}
		p.addr = a
		return p, nil
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, errors.New("ceiling server did not start within 10s")
	}
}

func (p *ceilingProc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
