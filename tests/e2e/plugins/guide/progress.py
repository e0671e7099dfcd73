# The user guide, "Progress Reporting", the agent side, lines 1696-1728.
# Changed: "from time import sleep", which the guide takes for granted, is
# added; the stray ")" ending line 1727 (a SyntaxError) is left out.
from time import sleep

from gofer.agent.rmi import Context
from gofer.decorators import remote

class MyClass:

   @remote
   def foo(self):
       """
       Do something reports progress
       """
       total = 10
       # get the call context
       ctx = Context.current()
       ctx.progress.total = total
       # demo reporting progress for 10 units
       for n in range(0, total):
           ctx.progress.completed += 1
           sleep(1)

   @remote
   def bar(self):
       """
       Do something reports progress with details.
       """
       total = 10
       # get the call context
       ctx = Context.current()
       ctx.progress.total = total
       # demo reporting progress for 10 units
       for n in range(0, total):
           ctx.progress.completed += 1
           ctx.progress.details='for: %d' % n
           sleep(1)
