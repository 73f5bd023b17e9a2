# The reference article's 100 threads that send and receive on their own (section 1.2,
# "多线程自发自收"), transcribed with the server's port as its argument, a timeout, and a bounded
# number of rounds (the original loops forever). Prints one line per echo, as the original,
# then a summary line: "ok N" when every echo matched.
# usage: python3 threaded_clients.py PORT [THREADS=100] [ROUNDS=3]
import socket
import sys
import threading

PORT = int(sys.argv[1])
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
ok = []

def sock_conn():

    client = socket.socket()
    client.settimeout(10)
    client.connect(("localhost",PORT))
    count = 0
    while count < ROUNDS:
        #msg = input(">>:").strip()
        #if len(msg) == 0:continue
        client.send( ("hello %s" %count).encode("utf-8"))

        data = client.recv(1024)

        print("[%s]recv from server:" % threading.get_ident(),data.decode()) #结果
        if data.decode() == "hello %s" % count:
            ok.append(1)
        count +=1
    client.close()


threads = []
for i in range(THREADS):
    t = threading.Thread(target=sock_conn)
    t.start()
    threads.append(t)
for t in threads:
    t.join(30)
print("ok", len(ok), "of", THREADS * ROUNDS)
