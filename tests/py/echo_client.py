# The reference article's interactive echo client (section 1.2, client.py), transcribed with
# the server's port as its argument, a timeout, and an end at the end of its input (the
# original loops on input() forever).
# usage: printf 'a\nb\n' | python3 echo_client.py PORT
import socket
import sys

HOST = 'localhost'    # The remote host
PORT = int(sys.argv[1])  # The same port as used by the server
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
s.connect((HOST, PORT))
while True:
    try:
        msg = bytes(input(">>:"),encoding="utf8")
    except EOFError:
        break
    s.sendall(msg)
    data = s.recv(1024)
    print('Received', repr(data))

s.close()
