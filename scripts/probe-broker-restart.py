#!/usr/bin/env python3
"""Does the local broker keep what it acknowledged across restarts?

Starts moto's S3 server and Tansu on it (as the durable LocalBroker does), writes numbered records from several
idempotent producers at a low rate, restarts the broker a few times (SIGKILL or SIGTERM), then reads every
partition back and prints how many acknowledged records are missing and how many acknowledged offsets were
handed to two different records. Run `bash scripts/setup.sh` first; the first run makes a Python environment
with confluent-kafka under .tools/probe-venv.

    python3 scripts/probe-broker-restart.py --restarts 6 --producers 8 --signal KILL
"""
import argparse, os, signal, subprocess, sys, time, urllib.request

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".tools")
venv = os.path.join(root, "probe-venv")
if os.path.realpath(sys.prefix) != os.path.realpath(venv):
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        wheels = [w for w in os.listdir(os.path.join(root, "wheels")) if w.startswith("confluent_kafka")]
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", os.path.join(root, "wheels", wheels[0])], check=True)
    os.execv(os.path.join(venv, "bin", "python"), [os.path.join(venv, "bin", "python")] + sys.argv)

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

options = argparse.ArgumentParser()
options.add_argument("--restarts", type=int, default=6)
options.add_argument("--producers", type=int, default=8)
options.add_argument("--every", type=float, default=6.0, help="seconds between restarts")
options.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
options.add_argument("--port", type=int, default=19093)
arguments = options.parse_args()

s3_port = arguments.port + 400
env = dict(os.environ, AWS_ENDPOINT=f"http://127.0.0.1:{s3_port}", AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID="probe",
           AWS_SECRET_ACCESS_KEY="probe", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
quiet = {"log_level": 0, "logger": lambda *_: None}
s3 = subprocess.Popen([os.path.join(root, "moto", "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{s3_port}/probe", method="PUT"))
        break
    except Exception:
        time.sleep(0.2)
url = f"tcp://127.0.0.1:{arguments.port}"
def start_broker():
    return subprocess.Popen([os.path.join(root, "bin", "tansu"), "broker", "--listener-url", url, "--advertised-listener-url",
                             url, "--storage-engine", "s3://probe/"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
broker = start_broker()
time.sleep(2)
servers = f"127.0.0.1:{arguments.port}"
admin = AdminClient({"bootstrap.servers": servers, **quiet})
for future in admin.create_topics([NewTopic("probe", 8, 1)]).values():
    future.result()

acknowledged, failed, offsets = set(), 0, {}
def delivered(error, message):
    global failed
    if error is None:
        acknowledged.add(message.value().decode())
        offsets.setdefault((message.partition(), message.offset()), set()).add(message.value().decode())
    else:
        failed += 1
producers = [Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5, **quiet})
             for _ in range(arguments.producers)]
sent, restarts, began = 0, 0, time.time()
while time.time() - began < 4 + arguments.restarts * arguments.every:
    sent += 1
    producers[sent % len(producers)].produce("probe", key=str(sent % 97), value=str(sent), on_delivery=delivered)
    for producer in producers:
        producer.poll(0.01 / len(producers))
    if restarts < arguments.restarts and time.time() - began > 4 + restarts * arguments.every:
        broker.send_signal(getattr(signal, "SIG" + arguments.signal))
        broker.wait()
        time.sleep(1)
        broker = start_broker()
        restarts += 1
unflushed = sum(producer.flush(120) for producer in producers)

reader = Consumer({"bootstrap.servers": servers, "group.id": "probe", "enable.auto.commit": False, **quiet})
reader.assign([TopicPartition("probe", partition, 0) for partition in range(8)])
read, last = set(), time.time()
while time.time() - last < 8:
    message = reader.poll(0.5)
    if message is not None and not message.error():
        read.add(message.value().decode())
        last = time.time()
reader.close()
broker.kill()
s3.kill()
missing = sorted(acknowledged - read, key=int)
reused = sum(1 for values in offsets.values() if len(values) > 1)
print(f"{arguments.restarts} restarts (SIG{arguments.signal}), {arguments.producers} producers: {sent} sent, "
      f"{len(acknowledged)} acknowledged, {failed} failed, {unflushed} unflushed; {len(read)} read back; "
      f"{len(missing)} acknowledged records missing {missing[:10]}; {reused} offsets acknowledged to two records")
