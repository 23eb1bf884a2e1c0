# Regenerates docs.txt (see the format notes at the top of server.rs) from a running
# redis-server 7.0.x: `python3 docs_gen.py <port> > docs.txt`.
# Generates shoal's docs.txt from a real redis-server 7.0 (COMMAND DOCS + COMMAND INFO).
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port))
f = s.makefile('rb')
def send(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode()
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    s.sendall(out)
def read():
    line = f.readline()[:-2]
    t, body = chr(line[0]), line[1:].decode()
    if t in '+-':
        return (t, body)
    if t == ':':
        return (':', body)
    if t in '$=':
        n = int(body)
        data = f.read(n + 2)[:-2].decode()
        return ('$', data)
    if t in '*~':
        return (t, [read() for _ in range(int(body))])
    if t == '%':
        return ('%', [(read(), read()) for _ in range(int(body))])
    if t == '_':
        return ('_', None)
    raise Exception(t)
def tokens(v, out):
    t, b = v
    if t in '+$:':
        assert '\t' not in b and '\n' not in b, b
        out.append(t + b)
    elif t in '*~':
        out.append('%s%d' % (t, len(b)))
        for x in b: tokens(x, out)
    elif t == '%':
        out.append('%%%d' % len(b))
        for k, x in b:
            if k[1] == 'subcommands' and x[0] == '%':
                # Redis answers in hash-table order; sort for a stable file.
                x = ('%', sorted(x[1], key=lambda kv: kv[0][1]))
            tokens(k, out); tokens(x, out)
    else:
        raise Exception(t)
    return out
send('HELLO', '3'); read()
send('COMMAND', 'DOCS'); docs = read()
send('COMMAND', 'INFO'); info = read()
lines = []
for k, v in sorted(docs[1], key=lambda kv: kv[0][1]):
    lines.append('D\t%s\t%s' % (k[1], '\t'.join(tokens(v, []))))
def walk(ci):
    b = ci[1]
    name = b[0][1]
    lines.append('I\t%s\t%s\t%s' % (name, '\t'.join(tokens(b[7], [])), '\t'.join(tokens(b[8], []))))
    for sub in b[9][1]:
        walk(sub)
for ci in sorted(info[1], key=lambda c: c[1][0][1]):
    walk(ci)
sys.stdout.write('\n'.join(sorted(lines)) + '\n')
