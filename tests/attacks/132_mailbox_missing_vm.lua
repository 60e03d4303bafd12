-- attack: send mail to a VM that does not exist
-- expect: VMNotFound
mailbox.send("no-such-vm-anywhere", "hello")
