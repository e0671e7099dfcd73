# The user guide, "Writing A Plugin", step 2: myplugin.py.
from gofer.decorators import  *

class MyClass:

   @remote
   def hello(self):
       return 'MyPlugin says, "hello".'
