# The user guide, "Writing A Plugin", step 2: myplugin.py, lines 374-390.
# The stand-alone function of lines 386-390 is here without its "self"
# parameter, which nobody passes; its class form is as the guide writes it.
from gofer.decorators import  *

class MyClass:

   @remote
   def hello(self):
       return 'MyPlugin says, "hello".'

@remote
def hello():
   return 'MyPlugin says, "hello".'
