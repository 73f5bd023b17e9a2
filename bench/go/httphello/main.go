// A hello-world HTTP/1.1 keep-alive server on plain net.Conn (no net/http, the same work as the
// crate's http_hello): one goroutine per connection, as many threads as GOMAXPROCS says.
// Usage: httphello PORT.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
)

var answer = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
var endOfHead = []byte("\r\n\r\n")

// serve answers every complete request head on conn until the client closes.
func serve(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 8192)
	filled := 0
	for {
		n, err := conn.Read(buf[filled:])
		if n == 0 || err != nil {
			return
		}
		filled += n
		used := 0
		for {
			at := bytes.Index(buf[used:filled], endOfHead)
			if at < 0 {
				break
			}
			used += at + len(endOfHead)
			if _, err := conn.Write(answer); err != nil {
				return
			}
		}
		if used == 0 && filled == len(buf) {
			return // a head larger than the buffer: not a client of this benchmark
		}
		filled = copy(buf, buf[used:filled])
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httphello PORT")
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		conn, err := listener.Accept()
		if err == nil {
			go serve(conn)
		}
	}
}
