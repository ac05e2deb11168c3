// Command snappy is golang/snappy's framed format, the one the Pushgateway (1.6 and later)
// reads push bodies in: its main.go (decodeRequest) wraps a body sent with
// "Content-Encoding: snappy" in snappy.NewReader. "encode" frames stdin onto stdout as a client
// would send it; "decode" reads stdin through that reader and prints "ok", or the reader's
// error: the words the Pushgateway answers a damaged body with (400, handler/push.go).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/golang/snappy"
)

func main() {
	mode := ""
	if len(os.Args) == 2 {
		mode = os.Args[1]
	}
	switch mode {
	case "encode":
		framed := snappy.NewBufferedWriter(os.Stdout)
		if _, err := io.Copy(framed, os.Stdin); err != nil {
			fail(err)
		}
		if err := framed.Close(); err != nil {
			fail(err)
		}
	case "decode":
		if _, err := io.Copy(io.Discard, snappy.NewReader(os.Stdin)); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("ok")
	default:
		fmt.Fprintln(os.Stderr, "usage: snappy encode|decode < input")
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
