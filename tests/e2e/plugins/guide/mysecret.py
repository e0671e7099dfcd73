# The user guide, "Writing A Plugin" > "Security", lines 502-508: MyClass.hello()
# must be given the secret.
from gofer.decorators import  *

class MyClass:

   @remote(secret='mycathas9lives')
   def hello(self):
       return 'MyPlugin says, "hello".'
